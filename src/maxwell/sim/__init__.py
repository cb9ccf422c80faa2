"""sim package (being built)."""
