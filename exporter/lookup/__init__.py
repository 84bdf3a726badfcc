"""The support desk's lookup: one transaction's SMS story for the agent a cardholder calls.

`query` validates what an agent searches by; the store finds the retained, masked rows;
`explain` tells the situation, the timeline and the advice (`advice.yaml`, the one source of
that wording) in plain English or Chinese; `alerts` adds the incidents firing at the time from
Prometheus; `service` runs one audited lookup; `access`, `routes` and `page` serve it over HTTP
(`GET /api/v1/receipts`, `/lookup`); `commands` are `smswatch lookup`, `audit export` and
`lookup-token`.
"""
