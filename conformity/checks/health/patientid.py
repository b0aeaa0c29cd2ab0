"""Checks: patientid (being written)."""
