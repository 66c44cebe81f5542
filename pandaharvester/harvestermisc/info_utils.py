"""The original's home of :class:`PandaQueuesDict` (``[qconf] resolverModule`` names it): see
:mod:`pandaharvester.harvestercore.info_dicts`, where it lives now."""

from pandaharvester.harvestercore.info_dicts import (  # noqa: F401  (re-exported)
    DEFAULT_REFRESH_PERIOD,
    RETRY_DELAY,
    CachedDictBase,
    GridServicesDict,
    PandaQueuesDict,
    __all__,
)
