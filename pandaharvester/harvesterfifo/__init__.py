"""harvesterfifo."""
