"""physics package (being built)."""
