"""Checks: directory (being written)."""
