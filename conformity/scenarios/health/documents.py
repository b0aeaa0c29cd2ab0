"""Scenarios: documents (being written)."""
