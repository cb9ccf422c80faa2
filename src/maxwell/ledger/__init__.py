"""ledger package (being built)."""
