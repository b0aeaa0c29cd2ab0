"""Domain-pack helpers: the sector-specific rules that checks and the sandbox share."""
