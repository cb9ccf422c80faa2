"""market package (being built)."""
