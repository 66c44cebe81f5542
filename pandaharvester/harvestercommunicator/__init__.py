"""harvestercommunicator."""
