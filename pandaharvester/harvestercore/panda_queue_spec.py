"""PandaQueueSpec: submission state of one queue/job type/resource type — a row of ``pq_table``."""

from __future__ import annotations

from .spec_base import SpecBase


class PandaQueueSpec(SpecBase):
    """Per (queue, jobType, resourceType) limits and timestamps used by the submitter and fetcher.

    uniqueName is ``core_utils.get_unique_queue_name(queueName, resourceType, jobType)``.
    """

    attributesWithTypes = (
        "queueName:text / index",
        "nQueueLimitJob:integer",
        "nQueueLimitWorker:integer",
        "maxWorkers:integer",
        "jobFetchTime:timestamp / index",
        "submitTime:timestamp / index",
        "lockedBy:text",
        "siteName:text / index",
        "jobType:text",
        "resourceType:text",
        "nNewWorkers:integer",
        "uniqueName:text primary key",
        "nQueueLimitJobRatio:integer",
        "nQueueLimitJobMax:integer",
        "nQueueLimitJobMin:integer",
        "nQueueLimitWorkerRatio:integer",
        "nQueueLimitWorkerMax:integer",
        "nQueueLimitWorkerMin:integer",
    )

    # wildcard resource type and job type
    RT_catchall = "ANY"
    JT_catchall = "ANY"
