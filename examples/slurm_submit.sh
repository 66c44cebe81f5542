#!/bin/bash
# Batch script template of SlurmSubmitter (see examples/panda_queueconfig_slurm.json and the
# README's "Slurm plugins" section). {name} placeholders are filled in per worker by Harvester;
# anything else in braces (shell syntax such as ${SLURM_JOB_ID}) is left as it is.
#SBATCH --job-name=harvester-{workerID}
#SBATCH --nodes={nNode}
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task={nCorePerNode}
#SBATCH --mem-per-cpu={requestRamPerCore}M
#SBATCH --time={requestWalltimeMinute}
#SBATCH --output={accessPoint}/slurm-%j.out
#SBATCH --error={accessPoint}/slurm-%j.err

echo "Harvester {harvesterID} worker {workerID} (queue {pandaQueueName}, PandaIDs: {pandaIDs})"
echo "Slurm job ${SLURM_JOB_ID} on $(hostname): {nCoreTotal} cores, {requestRam} MB, {requestWalltimeMinute} min"
cd "{accessPoint}" || exit 1
# the pilot: here the project's dummy pilot, which speaks the shared-file messenger's protocol
exec {pilotCommand} --access-point "{accessPoint}" --worker-id {workerID}
