"""memtrace package (being built)."""
