"""harvesterscripts."""
