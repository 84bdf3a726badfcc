"""Sources: one module per API family turns provider pages into normalized records.

Sources parse and fetch; they never touch the store or the metrics.
"""
