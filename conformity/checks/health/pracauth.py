"""Checks: pracauth (being written)."""
