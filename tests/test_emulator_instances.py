"""PanDA server emulator, the harvester-instance side: workers, commands and queue depth, worker
statistics, instance and queue configs (over real HTTP against a real process)."""
# ruff: noqa: F811  (pytest fixtures imported from pytest_fixtures are redefined as arguments)

from __future__ import annotations

import json
import time

import pytest
import requests

from pandaharvester.harvestertest.panda_emulator.launcher import EmulatorError
from pandaharvester.harvestertest.panda_emulator.pytest_fixtures import emulator, emulator_tls  # noqa: F401

from emulator_http import get, post  # noqa: E402


def test_workers_commands_and_queue_depth(emulator):
    post(emulator, "harvester/heartbeat", {"harvester_id": "H2", "data": {}})
    post(
        emulator,
        "harvester/heartbeat",
        {
            "harvester_id": "H2",
            "data": {
                "commands": [{"command": "SET_N_WORKERS_JOBTYPE", "computingSite": "SITE_W", "resourceType": "SCORE"}]
            },
        },
    )
    cur = get(emulator, "harvester/get_current_worker_id", {"harvester_id": "H2"})
    assert cur == {"success": False, "message": "database error in the PanDA server", "data": None}
    workers = [
        {
            "workerID": i,
            "batchID": f"b{i}",
            "status": "submitted",
            "computingSite": "SITE_W",
            "resourceType": "SCORE",
            "nCore": 1,
            "nJobs": 1,
            "pandaid_list": [],
            "submitTime": "datetime/2026-01-01 00:00:00.000000",
        }
        for i in (1, 2)
    ]
    assert post(emulator, "harvester/update_workers", {"harvester_id": "H2", "workers": json.dumps(workers)})[
        "data"
    ] == [True, True]
    workers[0]["status"] = "running"
    res = post(emulator, "harvester/update_workers", {"harvester_id": "H2", "workers": workers + [{"no": "id"}]})
    assert res["data"] == [True, True, False]
    rows = {w["worker_id"]: w for w in emulator.workers(harvester_id="H2")}
    assert rows[1]["status"] == "running" and rows[1]["n_updates"] == 2 and rows[2]["n_updates"] == 1
    assert emulator.state()["workers"]["H2"] == {"running": 1, "submitted": 1}
    assert get(emulator, "harvester/get_current_worker_id", {"harvester_id": "H2"})["data"] == 2

    # queue depth → SET_N_WORKERS_JOBTYPE for the instance serving the site
    depth = emulator.set_queue_depth("SITE_W", 25, resource_type="SCORE")
    assert depth["notified"] == ["H2"]
    cid = emulator.add_command("H2", "KILL_WORKERS", {"workerIDs": [1]})
    emulator.add_command("H2", "REPORT_WORKER_STATS:SITE_W", None, ack_requested=False)
    cmds = post(emulator, "harvester/acquire_commands", {"harvester_id": "H2", "n_commands": 10})["data"]
    assert [c["command"] for c in cmds] == [
        "SET_N_WORKERS_JOBTYPE:SITE_W",
        "KILL_WORKERS",
        "REPORT_WORKER_STATS:SITE_W",
    ]
    # a real job type by default, as the real server's pilot streaming sends it
    assert cmds[0]["params"] == {"managed": {"SCORE": 25}} and cmds[1]["command_id"] == cid
    assert post(emulator, "harvester/acquire_commands", {"harvester_id": "H2", "n_commands": 10})["data"] == []
    assert emulator.state()["commands"]["H2"] == {"sent": 2}
    assert post(emulator, "harvester/acknowledge_commands", {"command_ids": [c["command_id"] for c in cmds]})["success"]
    assert emulator.state()["commands"] == {}
    assert emulator.state()["queue_depth"] == {"SITE_W": {"managed": {"SCORE": 25}}}
    # a later depth for another resource type: the command carries every depth of the site
    emulator.set_queue_depth("SITE_W", 3, resource_type="MCORE")
    cmds = post(emulator, "harvester/acquire_commands", {"harvester_id": "H2", "n_commands": 10})["data"]
    assert [c["params"] for c in cmds] == [{"managed": {"SCORE": 25, "MCORE": 3}}]
    post(emulator, "harvester/acknowledge_commands", {"command_ids": [c["command_id"] for c in cmds]})
    # ANY stays possible, mixed with the real job type in the same command
    emulator.set_queue_depth("SITE_W", 0, resource_type="SCORE", job_type="ANY")
    cmds = post(emulator, "harvester/acquire_commands", {"harvester_id": "H2", "n_commands": 10})["data"]
    assert [c["params"] for c in cmds] == [{"ANY": {"SCORE": 0}, "managed": {"SCORE": 25, "MCORE": 3}}]
    post(emulator, "harvester/acknowledge_commands", {"command_ids": [c["command_id"] for c in cmds]})
    with pytest.raises(EmulatorError, match="unknown command"):
        emulator.add_command("H2", "NOT_A_COMMAND")

    # statistics
    stats = {"managed": {"SCORE": {"running": 3, "submitted": 1}}}
    assert post(
        emulator,
        "harvester/report_worker_statistics",
        {"harvester_id": "H2", "panda_queue": "SITE_W", "statistics": json.dumps(stats)},
    )["success"]
    assert get(emulator, "harvester/get_worker_statistics")["data"] == {"SITE_W": {"H2": stats}}


def _serving(emu, harvester_id, site):
    """An instance asking for the commands of ``site`` in its heartbeats (the first one creates it)."""
    data = {"commands": [{"command": "SET_N_WORKERS_JOBTYPE", "computingSite": site, "resourceType": "SCORE"}]}
    post(emu, "harvester/heartbeat", {"harvester_id": harvester_id, "data": {}})
    assert post(emu, "harvester/heartbeat", {"harvester_id": harvester_id, "data": data})["success"]


def _sent(emu, harvester_id):
    cmds = post(emu, "harvester/acquire_commands", {"harvester_id": harvester_id, "n_commands": 10})["data"]
    post(emu, "harvester/acknowledge_commands", {"command_ids": [c["command_id"] for c in cmds]})
    return [c["params"] for c in cmds]


def test_each_live_instance_gets_its_share_of_the_queue_depth(emulator):
    for hid in ("HA", "HB", "HC"):
        _serving(emulator, hid, "SITE_S")
    emulator.set_queue_depth("SITE_S", 3, resource_type="MCORE", command=False)
    reply = emulator.set_queue_depth("SITE_S", 10, resource_type="SCORE")
    # 10 over three: 4, 3, 3 (the remainder to the first by id); they add up to what PanDA wants
    assert reply["notified"] == ["HA", "HB", "HC"]
    assert [_sent(emulator, hid) for hid in ("HA", "HB", "HC")] == [
        [{"managed": {"MCORE": 1, "SCORE": 4}}], [{"managed": {"MCORE": 1, "SCORE": 3}}],
        [{"managed": {"MCORE": 1, "SCORE": 3}}]]
    # HC stops: once its heartbeat is older than the instance timeout, the next depth goes to the others
    assert emulator.settings(instance_timeout=1.0)["instance_timeout"] == 1.0
    time.sleep(1.2)
    for hid in ("HA", "HB"):
        _serving(emulator, hid, "SITE_S")
    reply = emulator.set_queue_depth("SITE_S", 10, resource_type="SCORE")
    assert reply["notified"] == ["HA", "HB"] and _sent(emulator, "HC") == []
    assert [_sent(emulator, hid) for hid in ("HA", "HB")] == [[{"managed": {"MCORE": 2, "SCORE": 5}}],
                                                             [{"managed": {"MCORE": 1, "SCORE": 5}}]]
    # a depth for one instance is that instance's whole
    emulator.set_queue_depth("SITE_S", 7, resource_type="SCORE", harvester_id="HC")
    assert _sent(emulator, "HC") == [{"managed": {"MCORE": 3, "SCORE": 7}}]


def _report(emu, harvester_id, queue, statistics):
    return post(emu, "harvester/report_worker_statistics",
                {"harvester_id": harvester_id, "panda_queue": queue, "statistics": statistics})


def test_worker_statistics_as_the_real_server_keeps_them(emulator):
    # a report replaces all the server holds for (instance, queue); other queues and instances stay
    first = {"managed": {"SCORE": {"running": 3, "submitted": 1}, "MCORE": {"running": 1}}}
    assert _report(emulator, "HS", "UPQ", json.dumps(first)) == {"success": True, "message": "OK", "data": None}
    assert _report(emulator, "HS", "OTHER", json.dumps(first))["success"]
    assert _report(emulator, "HS2", "UPQ", json.dumps(first))["success"]
    second = {"managed": {"SCORE": {"submitted": 2, "to_submit": 4}, "Undefined": {"running": 9}},
              "ANY": {"SCORE": {"running": 0}}, "user": {}}
    assert _report(emulator, "HS", "UPQ", json.dumps(second))["success"]
    held = get(emulator, "harvester/get_worker_statistics")["data"]
    # "Undefined" is dropped and a job type without rows is not held, as the real server's rows do
    assert held["UPQ"]["HS"] == {"managed": {"SCORE": {"submitted": 2, "to_submit": 4}},
                                 "ANY": {"SCORE": {"running": 0}}}
    assert held["UPQ"]["HS2"] == first and held["OTHER"]["HS"] == first
    assert emulator.worker_stats() == held
    # what the real server cannot store fails with its "database error" and keeps the last report
    for bad in ("not json", json.dumps([1, 2]), json.dumps({"managed": {"SCORE": {"running": "3"}}}),
                json.dumps({"managed": ["SCORE"]})):
        assert _report(emulator, "HS", "UPQ", bad) == {"success": False, "message": "database error", "data": None}
    assert get(emulator, "harvester/get_worker_statistics")["data"]["UPQ"]["HS"] == held["UPQ"]["HS"]
    # workers an instance reported through update_workers are no statistics of their own
    worker = {"workerID": 1, "status": "running", "computingSite": "NOSTATS", "resourceType": "SCORE"}
    assert post(emulator, "harvester/update_workers", {"harvester_id": "HS", "workers": [worker]})["data"] == [True]
    assert "NOSTATS" not in get(emulator, "harvester/get_worker_statistics")["data"]


def test_instance_and_queue_config(emulator):
    assert (
        requests.get(f"{emulator.url}/emulator/instance_config/H9/panda_harvester.cfg", timeout=10).status_code == 404
    )
    emulator.set_instance_config("H9", queues=["SITE_A", "SITE_B"])
    text = requests.get(f"{emulator.url}/emulator/instance_config/H9/panda_harvester.cfg", timeout=10).text
    assert "harvester_id = H9" in text and "  SITE_B" in text
    qc = requests.get(f"{emulator.url}/emulator/queue_config/H9.json", timeout=10).json()
    assert set(qc) == {"SITE_A", "SITE_B"}
    emulator.set_instance_config("H9", queue_config={"SITE_A": {"maxWorkers": 3}})
    assert requests.get(f"{emulator.url}/emulator/queue_config/H9.json", timeout=10).json() == {
        "SITE_A": {"maxWorkers": 3}
    }
    assert emulator.set_queue_depth("SITE_B", 4)["notified"] == ["H9"]


@pytest.mark.parametrize("tls", [False, True])
def test_instance_config_url_feeds_harvester_config(emulator, emulator_tls, fresh_home, monkeypatch, capsys, tmp_path,
                                                    tls):
    """What a site sets with the CLI is what Harvester reads through HARVESTER_INSTANCE_CONFIG_URL."""
    from pandaharvester.harvesterconfig import harvester_config
    from pandaharvester.harvestertest.panda_emulator.cli import main

    emu = emulator_tls if tls else emulator
    client = ["--url", emu.url] + (["--ca-cert", emu.ca_cert, "--token", emu.tokens[0]] if tls else [])
    qc_file = tmp_path / "qc.json"
    qc_file.write_text(json.dumps({"Q_A": {"maxWorkers": 4}}))
    assert main(["set-instance-config", *client, "--harvester-id", "HIC", "--queue", "Q_A", "--queue", "Q_B",
                 "--queue-config-file", str(qc_file)]) == 0
    capsys.readouterr()
    fresh_home()
    if tls:  # the emulator's own CA: urllib honours SSL_CERT_FILE
        monkeypatch.setenv("SSL_CERT_FILE", emu.ca_cert)
    monkeypatch.setenv("HARVESTER_INSTANCE_CONFIG_URL", f"{emu.url}/emulator/instance_config/HIC/panda_harvester.cfg")
    harvester_config.reload()
    assert harvester_config.master.harvester_id == "HIC"
    assert harvester_config.qconf.queueList == ["Q_A", "Q_B"]
    assert harvester_config.master.uname  # the rest of the local cfg stays
    qc = requests.get(f"{emu.url}/emulator/queue_config/HIC.json", timeout=10,
                      **({"verify": emu.ca_cert} if tls else {})).json()
    assert qc == {"Q_A": {"maxWorkers": 4}}
    qc_file.write_text("{nope")
    with pytest.raises(SystemExit, match="--queue-config-file is not valid JSON"):
        main(["set-instance-config", *client, "--harvester-id", "HIC", "--queue-config-file", str(qc_file)])
