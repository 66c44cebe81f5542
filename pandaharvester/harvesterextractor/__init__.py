"""harvesterextractor."""
