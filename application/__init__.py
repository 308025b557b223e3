"""Commands, ports and process-manager policies over the event store."""
