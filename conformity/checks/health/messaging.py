"""Checks: messaging (being written)."""
