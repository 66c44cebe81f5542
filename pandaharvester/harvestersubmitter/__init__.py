"""harvestersubmitter."""
