"""`smswatch backtest`: simulated days through the real pipeline, Prometheus and the real rules.

The stages, one module each:
- `transport`: the simulator's feeds served in-process to the real HTTP client (no sockets).
- `replay`: the simulation and the exporter (pollers, pipeline, store, collector) stepped on a
  simulated clock, one poll of every source and one scrape per step.
- `exposition`: each scrape written as OpenMetrics with timestamps, in time-partitioned files.
- `tsdb`: promtool backfills a Prometheus TSDB; a real Prometheus serves it for range queries.
- `rules`: the rule files Prometheus loads, recording rules ordered in levels.
- `evaluation`: recording rules evaluated and backfilled level by level, then alert rules.
- `alertstate`: the `for` / `keep_firing_for` state machine of Prometheus' alerting rules.
- `inhibition`: the `inhibit_rules` of alertmanager.yml applied to the firing intervals.
- `report`: episodes, pages per week, detection per fault, false pages: JSON and a table.
- `command`: the CLI entry that runs the stages and measures each.
"""

#: The default simulated start: a Monday, midnight UTC (08:00 in Beijing), fixed so runs repeat.
DEFAULT_START = "2026-11-02T00:00:00Z"
