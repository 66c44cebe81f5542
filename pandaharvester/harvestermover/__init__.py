"""harvestermover: helpers shared by the data-moving plugins (preparators and stagers)."""
