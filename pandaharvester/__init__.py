"""PanDA Harvester: the resource-facing edge service of the PanDA workload system."""
