"""harvesterconfig: panda_harvester.cfg access (``from pandaharvester.harvesterconfig import harvester_config``)."""
