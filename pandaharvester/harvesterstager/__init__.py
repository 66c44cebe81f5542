"""harvesterstager."""
