"""SET_N_WORKERS_JOBTYPE takes effect in the submitter cycle that applies it (as in the original)."""

from __future__ import annotations

from pandaharvester.harvesterbody.submitter import Submitter
from pandaharvester.harvestercore.command_spec import CommandSpec

from test_agents_helpers import agent_env, queue, sql  # noqa: F401

Q = "SLAVEQ"


def _command(site: str, depth: int | dict, command_id: int = 1) -> CommandSpec:
    params = depth if isinstance(depth, dict) else {"ANY": {"ANY": depth}}
    spec = CommandSpec()
    spec.convert_command_json({"command_id": command_id, "command": f"{CommandSpec.COM_setNWorkers}:{site}",
                               "params": params, "ack_requested": False})
    spec.receiver = CommandSpec.get_receiver(spec.command)
    return spec


def test_new_queue_depth_counts_in_the_same_cycle(agent_env):
    home, mapper, proxy = agent_env(lambda h: {Q: queue(h, map_type="NoJob", runMode="slave", nQueueLimitWorker=10,
                                                        maxWorkers=50)})
    agent = Submitter(mapper, single_mode=True)
    agent.run_cycle()
    assert sql("SELECT COUNT(*) FROM work_table") == [(0,)]  # PanDA wants none yet
    proxy.execute("UPDATE pq_table SET submitTime=NULL")  # the site is due again
    proxy.commit()
    assert proxy.store_commands([_command(Q, 3)])
    agent.run_cycle()
    assert sql("SELECT COUNT(*), MIN(status) FROM work_table") == [(3, "submitted")]
    assert sql("SELECT nNewWorkers FROM pq_table WHERE queueName=:q", {":q": Q}) == [(3,)]


UPQ = "UPQ"
PULL = {"map_type": "NoJob", "runMode": "slave", "nQueueLimitWorker": 10, "maxWorkers": 50}


def _per_slot() -> list:
    return sql("SELECT computingSite, jobType, resourceType, COUNT(*) FROM work_table "
               "GROUP BY computingSite, jobType, resourceType ORDER BY computingSite, jobType")


def test_real_job_type_gives_each_pseudo_queue_its_own_share(agent_env):
    # the field bug: with {"managed": {"SCORE": 3, "MCORE": 2}} both shares landed in UPQ/MCORE
    home, mapper, proxy = agent_env(lambda h: {f"{UPQ}/{rt}": queue(h, **PULL) for rt in ("SCORE", "MCORE")})
    agent = Submitter(mapper, single_mode=True)
    assert proxy.store_commands([_command(UPQ, {"managed": {"SCORE": 3, "MCORE": 2}})])
    agent.run_cycle()  # new rows for the job type: they count in this very cycle
    assert _per_slot() == [("UPQ/MCORE", "managed", "MCORE", 2), ("UPQ/SCORE", "managed", "SCORE", 3)]
    # ANY mixed with real types, as the real server answers once Harvester reported ANY workers
    proxy.execute("UPDATE pq_table SET submitTime=NULL")
    proxy.commit()
    assert proxy.store_commands([_command(UPQ, {"ANY": {"SCORE": 0, "MCORE": 0},
                                                "managed": {"SCORE": 4, "MCORE": 3}}, command_id=2)])
    agent.run_cycle()
    assert _per_slot() == [("UPQ/MCORE", "managed", "MCORE", 3), ("UPQ/SCORE", "managed", "SCORE", 4)]
