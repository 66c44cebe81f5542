"""harvestercore."""
