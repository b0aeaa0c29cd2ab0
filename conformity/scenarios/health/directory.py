"""Scenarios: directory (being written)."""
