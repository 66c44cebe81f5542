"""A PanDA server emulator (API v1) for tests, demos and benchmarks; see docs/emulator.md."""
