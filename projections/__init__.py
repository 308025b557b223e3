"""Read models: one module per model with its tables, event handlers and queries."""
