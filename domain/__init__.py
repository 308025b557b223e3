"""Pure domain model: aggregates, their events and the rules they enforce. No I/O."""
