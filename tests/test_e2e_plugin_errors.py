"""E2E: a plugin that raises does not stop its agent (a monitor plugin failing its first K calls)."""

from __future__ import annotations

import re

from e2e_helpers import daemon_run  # noqa: F401

PUSH = "DEMO_PUSH"
K = 4


def test_monitor_keeps_cycling_while_its_plugin_raises(daemon_run):  # noqa: F811
    run = daemon_run(only_queues=[PUSH], cfg={"log_level": {"monitor": "DEBUG"}})  # cycles end with a DEBUG line
    counter = run.home / "flaky_monitor.count"
    run.queues[PUSH]["submitter"]["sleepTime"] = 1
    run.queues[PUSH]["monitor"] = {"name": "FlakyMonitor", "module": "e2e_helpers", "nFailures": K,
                                   "counterFile": str(counter)}
    from pandaharvester.harvestertest import instance

    instance.write_queue_config(run.home, run.queues)
    panda_ids = run.emulator.add_task(PUSH, 3)
    run.start()
    run.wait_until(lambda: all(j["status"] == "finished" for j in run.jobs(PUSH)), 60,
                   "jobs finished once the monitor plugin stops raising")
    assert sorted(j["panda_id"] for j in run.jobs(PUSH)) == sorted(panda_ids)
    run.wait_until(lambda: {w["status"] for w in run.workers(PUSH)} == {"finished"}, 30, "workers finished")
    assert int(counter.read_text()) > K
    log = run.log("monitor")
    failures = re.findall(r"FlakyMonitor\.check_workers raised RuntimeError: FlakyMonitor deliberate failure (\d+)/", log)
    assert {int(n) for n in failures} == set(range(1, K + 1)), "each failure logged with the plugin's name"
    # the agent kept cycling during and after the failures
    lines = log.splitlines()
    last_failure = max(i for i, line in enumerate(lines) if "deliberate failure" in line)
    cycles_after = [line for line in lines[last_failure:] if re.search(r" run .*took [0-9.]+ sec", line)]
    assert len(cycles_after) >= 2, "monitor stopped cycling after its plugin raised"
    assert run.alive()
    assert run.stop() == 0
