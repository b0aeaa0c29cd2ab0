"""Scenarios: messaging (being written)."""
