"""record package (being built)."""
