"""Release information, kept under the original's module name."""

release_version = "0.6.0"
