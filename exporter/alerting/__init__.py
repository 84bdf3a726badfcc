"""Alerting as code: the alert spec (`alerts/spec.yaml`) and the generator of the rule files.

`spec` reads and validates the one file of objectives and thresholds; `promql` builds the
expressions from the metric catalogue; `generate` renders Prometheus rule files, optionally
time-scaled for the end-to-end test.
"""
