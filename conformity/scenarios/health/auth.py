"""Scenarios: auth (being written)."""
