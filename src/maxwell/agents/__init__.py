"""agents package (being built)."""
