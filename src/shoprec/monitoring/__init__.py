"""Online monitoring: metrics per model version from the event store, drift, alerts, rollbacks."""
