"""Names shared by the resource-type mapper and the plugins that size workers."""

# keys of a CRIC panda-queue dict
CRIC_RAM_TAG = "maxrss"
CRIC_CORE_TAG = "corecount"
CAPABILITY_TAG = "capability"
# capability of a unified (single- and multi-core) queue
UNIFIED_QUEUE_TAG = "ucore"

# basic resource types
BASIC_RESOURCE_TYPE_SINGLE_CORE = "SCORE"
BASIC_RESOURCE_TYPE_MULTI_CORE = "MCORE"
