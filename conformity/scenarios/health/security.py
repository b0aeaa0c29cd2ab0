"""Scenarios: security (being written)."""
