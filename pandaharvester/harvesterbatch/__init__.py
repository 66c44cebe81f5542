"""Batch systems as plugins see them: one module per batch system.

- :mod:`.slurm`: the Slurm commands (sbatch, scontrol, squeue, sacct, scancel), their output
  parsing and the one table translating Slurm job states into WorkSpec statuses;
- :mod:`.dummy`: the dummy "batch system" of the dummy plugins (local pilot processes).

Submitter, monitor and sweeper plugins of the same batch system import from here, so that no
plugin package imports another. Nothing in ``harvestercore`` imports this package.
"""
