"""harvestermonitor."""
