"""Provider account health: credit balance or package quota, and whether the sender
signatures and message templates are approved.

Two common outages announce themselves before they hit: the SMS account runs out of credit,
or a signature or template loses its approval. Each gateway with an `account:` section is
checked on its own slow schedule (`account.interval`, default 10m); the collector exports the
latest check and alerts/spec.yaml judges it.
"""
