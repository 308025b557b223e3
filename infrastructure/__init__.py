"""Adapters, settings, persistence and the composition root."""
