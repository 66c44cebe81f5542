"""harvesterconfig."""
