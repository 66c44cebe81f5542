"""The file names of the shared-file protocol between a worker and Harvester (cfg ``[payload_interaction]``).

Messengers read and write these files in a worker's access point; the dummy submitter hands
them to the dummy pilot, which writes them from the worker side. Values are read from the cfg
when asked for (never at import), with the original's defaults when unset or without a cfg.
"""

from __future__ import annotations

from typing import Any

# cfg key in [payload_interaction] -> (messenger attribute, default)
PAYLOAD_FILE_KEYS: dict[str, tuple[str, str]] = {
    "workerAttributesFile": ("jsonAttrsFileName", "worker_attributes.json"),
    "jobReportFile": ("jsonJobReport", "jobReport.json"),
    "eventStatusDumpJsonFile": ("jsonOutputsFileName", "event_status.dump.json"),
    "eventStatusDumpXmlFile": ("xmlOutputsBaseFileName", "_event_status.dump"),
    "jobRequestFile": ("jsonJobRequestFileName", "worker_requestjob.json"),
    "jobSpecFile": ("jobSpecFileName", "pandaJobData.out"),
    "eventRequestFile": ("jsonEventsRequestFileName", "worker_requestevents.json"),
    "eventRangesFile": ("jsonEventsFeedFileName", "JobsEventRanges.json"),
    "updateEventsFile": ("jsonEventsUpdateFileName", "worker_updateevents.json"),
    "xmlPoolCatalogFile": ("xmlPoolCatalogFileName", "PoolFileCatalog_H.xml"),
    "pandaIDsFile": ("pandaIDsFile", "worker_pandaids.json"),
    "killWorkerFile": ("killWorkerFile", "kill_worker.json"),
    "heartbeatFile": ("heartbeatFile", "worker_heartbeat.json"),
    "taskWorkBaseDir": ("taskWorkBaseDir", "/tmp/workdir"),
    "taskWorkStateFile": ("taskWorkStateFile", "state.json"),
}


def get_payload_interaction_attr(key: str, default: Any = None) -> Any:
    """``[payload_interaction] <key>`` from the cfg, or ``default`` when unset or no cfg is loaded."""
    try:
        from pandaharvester.harvesterconfig import harvester_config

        section = harvester_config.payload_interaction
        value = getattr(section, key, default)
    except Exception:  # no cfg (tests, the dummy pilot), or no such section
        return default
    return default if value in (None, "") else value


def payload_file_names() -> dict[str, str]:
    """Every payload-interaction name keyed by its cfg key, with the cfg's values applied."""
    return {key: get_payload_interaction_attr(key, default) for key, (_, default) in PAYLOAD_FILE_KEYS.items()}
