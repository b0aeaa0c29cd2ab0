"""Checks: docshare (being written)."""
