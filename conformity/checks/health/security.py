"""Checks: security (being written)."""
