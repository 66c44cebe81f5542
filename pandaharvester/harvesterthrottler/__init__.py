"""harvesterthrottler."""
