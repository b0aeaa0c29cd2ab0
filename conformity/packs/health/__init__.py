"""Health pack helpers (INS identity rules, LOINC document types)."""
