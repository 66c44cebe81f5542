"""harvesterworkermaker."""
