"""Old home of the Slurm helpers, kept so that existing imports work: see :mod:`pandaharvester.harvesterbatch.slurm`."""

from pandaharvester.harvesterbatch.slurm import (  # noqa: F401  (re-exported)
    FINAL_SLURM_STATES,
    SLURM_STATES,
    AccountingUnavailable,
    JobRecord,
    SlurmClient,
    SlurmError,
    SlurmOutputError,
    __all__,
    is_transient,
    normalize_state,
    worker_status,
)
