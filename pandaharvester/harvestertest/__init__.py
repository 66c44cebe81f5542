"""harvestertest."""
