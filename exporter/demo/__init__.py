"""`smswatch demo`: the simulator, the exporter and, when Prometheus and Alertmanager are
installed, the whole alerting chain down to a receiver that prints each page in the terminal."""
