"""harvestersweeper."""
