"""membrane package (being built)."""
