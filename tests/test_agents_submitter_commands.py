"""SET_N_WORKERS_JOBTYPE takes effect in the submitter cycle that applies it (as in the original)."""

from __future__ import annotations

from pandaharvester.harvesterbody.submitter import Submitter
from pandaharvester.harvestercore.command_spec import CommandSpec

from test_agents_helpers import agent_env, queue, sql  # noqa: F401

Q = "SLAVEQ"


def _command(site: str, depth: int) -> CommandSpec:
    spec = CommandSpec()
    spec.convert_command_json({"command_id": 1, "command": f"{CommandSpec.COM_setNWorkers}:{site}",
                               "params": {"ANY": {"ANY": depth}}, "ack_requested": False})
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
