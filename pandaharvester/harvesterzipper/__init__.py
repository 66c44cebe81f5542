"""harvesterzipper."""
