"""harvesterbody."""
