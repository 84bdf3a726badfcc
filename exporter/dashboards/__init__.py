"""Grafana dashboards as code: the generator, its building blocks and the push to Grafana.

The dashboards are built with grafana-foundation-sdk; `smswatch dashboards generate` writes them
to `dashboards/*.json` and, in Simplified Chinese (`translation.py`, `zh-CN.yaml`), to
`dashboards/zh-CN/*.json` (committed, checked for drift by a test), and `smswatch dashboards
push` uploads them to a Grafana over its HTTP API.
"""

from __future__ import annotations

#: Tag on every smswatch dashboard: the creator marker `push` checks before overwriting.
TAG = "smswatch"

#: The Grafana folder the dashboards live in, for provisioning and for `push` alike.
FOLDER_UID = "smswatch"
FOLDER_TITLE = "SMS notifications"

#: Where the runbooks are published; `${runbooks}/<AlertName>.md` is an alert's runbook.
RUNBOOKS_URL = "https://github.com/smswatch/smswatch/blob/main/alerts/runbooks"
