"""HTTP API, webhooks, analyst stream and the command line: thin adapters over the application."""
