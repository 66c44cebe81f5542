"""harvestercredmanager."""
