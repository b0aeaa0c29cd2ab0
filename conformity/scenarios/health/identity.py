"""Scenarios: identity (being written)."""
