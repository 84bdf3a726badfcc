"""Canary SMS probes: a test message on a schedule through each gateway's own send API, proved
delivered twice (the delivery report through the normal path, and the nonce on a test handset),
kept apart from the cardholder metrics. Settings in `settings`, sends in `senders`, the handset
in `inbox`, verdicts in `ledger`, the schedule's work in `prober`, the CLI in `command`."""
