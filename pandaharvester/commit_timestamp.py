"""Commit time stamp of the build (filled by packaging; empty in a source tree)."""

timestamp = ""
