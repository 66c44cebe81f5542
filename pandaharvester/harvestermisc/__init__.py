"""harvestermisc."""
