"""control package (being built)."""
