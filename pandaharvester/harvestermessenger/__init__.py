"""harvestermessenger."""
