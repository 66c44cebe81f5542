"""harvestermiddleware."""
