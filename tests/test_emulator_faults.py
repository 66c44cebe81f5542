"""PanDA server emulator: every fault kind, determinism with a seed, start-time settings."""
# ruff: noqa: F811  (pytest fixtures imported from pytest_fixtures are redefined as arguments)

from __future__ import annotations

import json
import time

import pytest
import requests

from pandaharvester.harvestertest.panda_emulator.faults import FaultConfig
from pandaharvester.harvestertest.panda_emulator.launcher import start_emulator
from pandaharvester.harvestertest.panda_emulator.pytest_fixtures import emulator  # noqa: F401

J = {"Accept": "application/json"}
UPDATE = "pilot/update_jobs_bulk"


def _dispatch_one(emu):
    pid = emu.add_task("SITE_F", 1)[0]
    r = requests.post(
        f"{emu.base_url}/pilot/acquire_jobs",
        json={"site_name": "SITE_F", "n_jobs": 1, "prod_source_label": "managed"},
        headers=J,
        timeout=10,
    )
    assert r.json()["success"]
    return pid


def _finish(emu, pid, timeout=10):
    return requests.post(
        f"{emu.base_url}/{UPDATE}",
        json={"job_list": [{"job_id": pid, "job_status": "finished"}]},
        headers=J,
        timeout=timeout,
    )


def _job(emu, pid):
    return emu.jobs(panda_ids=[pid])[0]


@pytest.mark.parametrize("kind,code", [("http500", 500), ("http503", 503)])
def test_http_errors_not_applied(emulator, kind, code):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=[kind], endpoints=[UPDATE])
    r = _finish(emulator, pid)
    assert r.status_code == code and r.json()["success"] is False
    assert _job(emulator, pid)["status"] == "sent"
    assert emulator.state()["faults"]["injected"] == {UPDATE: {kind: 1}}
    # other endpoints unaffected
    assert requests.get(f"{emulator.base_url}/system/is_alive", headers=J, timeout=10).json()["success"]


def test_drop_after_commit_applied_without_reply(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["drop_after_commit"], endpoints=[UPDATE])
    with pytest.raises(requests.exceptions.ConnectionError):
        _finish(emulator, pid)
    row = _job(emulator, pid)
    assert row["status"] in ("holding", "finished") and row["n_reports"] == 1
    deadline = time.monotonic() + 5
    while _job(emulator, pid)["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.05)
    row = _job(emulator, pid)
    assert row["status"] == "finished"
    # the client retries after the lost reply: accepted, nothing changes
    emulator.set_faults(rate=0.0)
    assert _finish(emulator, pid).json()["data"][0] == {
        "success": True,
        "message": "",
        "data": {"StatusCode": 0, "command": "NULL"},
    }
    again = _job(emulator, pid)
    assert again["n_changes"] == row["n_changes"] and again["status"] == "finished" and again["n_reports"] == 2


def test_drop_not_applied(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["drop"], endpoints=[UPDATE])
    with pytest.raises(requests.exceptions.ConnectionError):
        _finish(emulator, pid)
    assert _job(emulator, pid)["status"] == "sent"


def test_duplicate_apply_is_idempotent(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(
        rate=1.0,
        kinds=["duplicate_apply"],
        endpoints=[UPDATE, "harvester/update_workers", "harvester/update_service_metrics"],
    )
    r = _finish(emulator, pid)
    assert r.status_code == 200 and r.json()["data"][0]["success"] is True
    row = _job(emulator, pid)
    assert row["n_reports"] == 2 and row["status"] == "holding"
    assert row["n_changes"] == 2  # activated→sent, sent→holding: the second apply changed nothing
    w = [{"workerID": 1, "status": "running", "computingSite": "SITE_F"}]
    requests.post(
        f"{emulator.base_url}/harvester/update_workers", json={"harvester_id": "H", "workers": w}, headers=J, timeout=10
    )
    assert emulator.workers(harvester_id="H")[0]["n_updates"] == 1
    requests.post(
        f"{emulator.base_url}/harvester/update_service_metrics",
        json={"harvester_id": "H", "metrics": [["t", "h", {}]]},
        headers=J,
        timeout=10,
    )
    assert emulator.state()["metrics"] == {"H": 1}
    # never injected on non-idempotent endpoints such as acquire_jobs
    emulator.set_faults(rate=1.0, kinds=["duplicate_apply"])
    emulator.add_task("SITE_G", 4)
    got = requests.post(
        f"{emulator.base_url}/pilot/acquire_jobs",
        json={"site_name": "SITE_G", "n_jobs": 1, "prod_source_label": "managed"},
        headers=J,
        timeout=10,
    ).json()
    assert len(got["data"]["jobs"]) == 1 and emulator.state()["jobs"]["SITE_G"] == {"activated": 3, "sent": 1}


def test_truncated_and_double_body_applied(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["truncated_json"], endpoints=[UPDATE])
    r = _finish(emulator, pid)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    assert _job(emulator, pid)["status"] in ("holding", "finished")
    emulator.set_faults(rate=1.0, kinds=["double_body"], endpoints=["harvester/update_workers"])
    r = requests.post(
        f"{emulator.base_url}/harvester/update_workers",
        json={"harvester_id": "H", "workers": [{"workerID": 3, "status": "submitted"}]},
        headers=J,
        timeout=10,
    )
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    half = len(r.text) // 2
    assert r.text[:half] == r.text[half:] and json.loads(r.text[:half])["data"] == [True]
    assert emulator.workers(harvester_id="H")[0]["n_updates"] == 1


def test_invalid_json_not_applied(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["invalid_json"], endpoints=[UPDATE])
    r = _finish(emulator, pid)
    assert r.status_code == 200 and r.text.startswith("<html>")
    assert _job(emulator, pid)["status"] == "sent"


def test_delay_and_timeout(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["delay"], endpoints=[UPDATE], delay=0.6)
    t0 = time.monotonic()
    assert _finish(emulator, pid).json()["success"] is True
    assert time.monotonic() - t0 >= 0.55
    emulator.set_faults(rate=1.0, kinds=["timeout"], endpoints=["system/is_alive"], timeout_delay=3.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{emulator.base_url}/system/is_alive", headers=J, timeout=0.5)
    emulator.set_faults(rate=1.0, kinds=["timeout"], endpoints=["system/is_alive"], timeout_delay=0.3)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{emulator.base_url}/system/is_alive", headers=J, timeout=5)


def _outcomes(emu, n):
    out = []
    for _ in range(n):
        try:
            r = requests.get(f"{emu.base_url}/system/is_alive", headers=J, timeout=5)
            out.append(r.status_code)
        except requests.exceptions.ConnectionError:
            out.append("dropped")
    return out


def test_same_seed_same_sequence(emulator):
    settings = {"rate": 0.5, "kinds": ["http500", "http503", "drop"], "endpoints": ["system/is_alive"]}
    emulator.set_faults(seed=7, **settings)
    first = _outcomes(emulator, 24)
    emulator.set_faults(seed=7, **settings)
    second = _outcomes(emulator, 24)
    assert second == first
    assert len(set(first)) >= 3  # a mix of successes and several fault kinds
    emulator.set_faults(seed=8, **settings)
    third = _outcomes(emulator, 24)
    assert third != first
    injected = emulator.state()["faults"]["injected"]["system/is_alive"]
    assert sum(injected.values()) == sum(1 for o in first + second + third if o != 200)
    assert injected.get("drop", 0) == sum(1 for o in first + second + third if o == "dropped")


def test_fault_config_unit():
    a, b = FaultConfig(), FaultConfig()
    for fc in (a, b):
        fc.configure({"rate": 0.3, "kinds": "http500,drop_after_commit", "seed": 3})
    seq_a = [a.decide("pilot/update_jobs_bulk") for _ in range(50)]
    # interleaving calls to another endpoint does not change this endpoint's sequence
    seq_b = []
    for _ in range(50):
        b.decide("harvester/update_workers")
        seq_b.append(b.decide("pilot/update_jobs_bulk"))
    assert seq_a == seq_b and 5 < sum(k is not None for k in seq_a) < 30
    with pytest.raises(ValueError):
        a.configure({"rate": 2})
    with pytest.raises(ValueError):
        a.configure({"kinds": ["nope"], "rate": 0.1})
    with pytest.raises(ValueError):
        a.configure({"colour": "red"})


def test_faults_at_start_and_bad_settings(tmp_path):
    faults = {"rate": 1.0, "kinds": ["http503"], "endpoints": ["system/is_alive"], "seed": 1}
    with start_emulator(tmp_path / "emu", faults=faults) as emu:
        r = requests.get(f"{emu.base_url}/system/is_alive", headers=J, timeout=5)
        assert r.status_code == 503
        st = emu.state()["faults"]
        assert st["settings"]["kinds"] == ["http503"] and st["injected"] == {"system/is_alive": {"http503": 1}}
        r = requests.post(f"{emu.url}/emulator/faults", json={"rate": 0.5, "kinds": ["bogus"]}, headers=J, timeout=5)
        assert r.status_code == 400 and "bogus" in r.json()["message"]
    with start_emulator(
        tmp_path / "emu2",
        extra_args=["--fault-rate", "1", "--fault-kinds", "http500", "--fault-endpoints", "job/get_status"],
    ) as emu:
        assert (
            requests.get(f"{emu.base_url}/job/get_status", params={"job_ids": "1"}, headers=J, timeout=5).status_code
            == 500
        )
        assert requests.get(f"{emu.base_url}/system/is_alive", headers=J, timeout=5).status_code == 200


def test_watchdog_reassigns_jobs_left_in_sent(tmp_path):
    """A dispatch whose reply was lost (drop_after_commit on acquire_jobs) leaves the job in sent;
    the watchdog gives it back with the next attempt, so the flow converges."""
    with start_emulator(tmp_path / "emu", sent_timeout=1.0) as emu:
        assert emu.state()["sent_timeout"] == 1.0
        taken, lost = emu.add_task("SITE_W", 2)
        acquire = {"site_name": "SITE_W", "n_jobs": 1, "prod_source_label": "managed"}
        assert requests.post(f"{emu.base_url}/pilot/acquire_jobs", json=acquire, headers=J,
                             timeout=10).json()["data"]["jobs"][0]["PandaID"] == taken
        running = {"job_list": [{"job_id": taken, "job_status": "running", "attempt_nr": 1}]}
        assert requests.post(f"{emu.base_url}/{UPDATE}", json=running, headers=J, timeout=10).json()["data"][0][
            "success"]
        emu.set_faults(rate=1.0, kinds=["drop_after_commit"], endpoints=["pilot/acquire_jobs"])
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"{emu.base_url}/pilot/acquire_jobs", json=acquire, headers=J, timeout=10)
        emu.set_faults(rate=0.0)
        assert _job(emu, lost)["status"] == "sent"  # applied, the reply never arrived
        deadline = time.monotonic() + 20
        while _job(emu, lost)["status"] != "activated" and time.monotonic() < deadline:
            time.sleep(0.1)
        row = _job(emu, lost)
        assert row["status"] == "activated" and row["attempt_nr"] == 2 and row["harvester_id"] is None
        assert _job(emu, taken)["status"] == "running"  # a reported job is left alone
        (job,) = requests.post(f"{emu.base_url}/pilot/acquire_jobs", json=acquire, headers=J,
                               timeout=10).json()["data"]["jobs"]
        assert job["PandaID"] == lost and job["attemptNr"] == 2 and _job(emu, lost)["n_sent"] == 2
        # a late report of the lost attempt is refused; the new attempt's is taken
        old = {"job_list": [{"job_id": lost, "job_status": "running", "attempt_nr": 1}]}
        assert requests.post(f"{emu.base_url}/{UPDATE}", json=old, headers=J, timeout=10).json()["data"][0][
            "success"] is False
        new = {"job_list": [{"job_id": lost, "job_status": "finished", "attempt_nr": 2}]}
        assert requests.post(f"{emu.base_url}/{UPDATE}", json=new, headers=J, timeout=10).json()["data"][0][
            "success"] is True


def test_default_sent_timeout_leaves_normal_runs_alone(emulator):
    pid = _dispatch_one(emulator)
    assert emulator.state()["sent_timeout"] >= 600
    time.sleep(0.5)  # a few watchdog rounds
    assert _job(emulator, pid)["status"] == "sent"


# ------------------------------------------------------------------ wrong_shape
def test_wrong_shape_variants_unit():
    from pandaharvester.harvestertest.panda_emulator.faults import BARE_VALUES, wrong_shape

    jobs = {"success": True, "message": "", "data": {"StatusCode": 0, "jobs": [{"PandaID": 1, "attemptNr": 1}]}}
    assert wrong_shape(jobs, "bare", 0) == BARE_VALUES[0] == 7
    assert wrong_shape(jobs, "no_success") == {"message": "", "data": jobs["data"]}
    assert wrong_shape(jobs, "int_data")["data"] == 7  # an int where an object is expected
    assert wrong_shape(jobs, "strings")["data"] == {"StatusCode": 0, "jobs": ["{'PandaID': 1, 'attemptNr': 1}"]}
    assert wrong_shape(jobs, "missing_keys")["data"] == {"StatusCode": 0}  # the jobs key is gone
    commands = {"success": True, "message": "", "data": [{"command_id": 3, "command": "X", "params": None}]}
    assert wrong_shape(commands, "strings")["data"] == [str(commands["data"][0])]  # strings, not objects
    assert wrong_shape(commands, "missing_keys")["data"] == [{"command": "X", "params": None}]
    bools = {"success": True, "message": "", "data": [True, True]}
    assert wrong_shape(bools, "missing_keys")["data"] == []  # fewer answers than asked for
    proxy = {"success": True, "message": "", "data": {"user_proxy": "PEM"}}
    assert wrong_shape(proxy, "strings")["data"] == ["user_proxy=PEM"]
    assert jobs["data"]["jobs"] and commands["data"][0]["command_id"] == 3  # the real reply is left alone
    with pytest.raises(ValueError):
        wrong_shape(jobs, "colour")
    # the variant follows (seed, endpoint, n) and suits the data: a null data gets an envelope fault
    a, b = FaultConfig(), FaultConfig()
    for fc in (a, b):
        fc.configure({"rate": 1.0, "kinds": ["wrong_shape"], "seed": 4})
    seq = []
    for fc in (a, b):
        out = []
        for _ in range(40):
            fc.decide("harvester/heartbeat")
            out.append(fc.shape_variant("harvester/heartbeat", {"success": True, "message": "", "data": None}))
        seq.append(out)
    assert seq[0] == seq[1] and {v for v, _ in seq[0]} == {"bare", "no_success"}
    variants = set()
    for _ in range(60):
        a.decide("pilot/acquire_jobs")
        variants.add(a.shape_variant("pilot/acquire_jobs", jobs)[0])
    assert variants == {"bare", "no_success", "int_data", "strings", "missing_keys"}


def test_wrong_shape_applied_with_valid_json(emulator):
    pid = _dispatch_one(emulator)
    emulator.set_faults(rate=1.0, kinds=["wrong_shape"], endpoints=[UPDATE], seed=2)
    bodies = []
    for _ in range(8):
        r = _finish(emulator, pid)
        assert r.status_code == 200
        bodies.append(r.json())  # valid JSON every time
        good = {"success": True, "message": "", "data": [{"success": True, "message": "",
                                                        "data": {"StatusCode": 0, "command": "NULL"}}]}
        assert bodies[-1] != good
    assert _job(emulator, pid)["n_reports"] == 8  # applied each time
    assert emulator.state()["faults"]["injected"][UPDATE] == {"wrong_shape": 8}
    assert len({json.dumps(b) for b in bodies}) >= 3  # several shapes
    # on a call that hands something out it is applied too: the jobs are dispatched, the reply unusable
    emulator.add_task("SITE_S", 2)
    emulator.set_faults(rate=1.0, kinds=["wrong_shape"], endpoints=["pilot/acquire_jobs"], seed=1)
    r = requests.post(f"{emulator.base_url}/pilot/acquire_jobs", headers=J, timeout=10,
                      json={"site_name": "SITE_S", "n_jobs": 2, "prod_source_label": "managed"})
    assert r.status_code == 200 and r.json() is not None
    assert emulator.state()["jobs"]["SITE_S"] == {"sent": 2}
    # same seed, same replies
    emulator.set_faults(rate=1.0, kinds=["wrong_shape"], endpoints=[UPDATE], seed=2)
    assert [_finish(emulator, pid).json() for _ in range(8)] == bodies
