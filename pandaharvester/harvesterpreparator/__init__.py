"""harvesterpreparator."""
