"""PanDA server emulator: every API endpoint over real HTTP against a real process."""
# ruff: noqa: F811  (pytest fixtures imported from pytest_fixtures are redefined as arguments)

from __future__ import annotations

import json
import zlib

import requests

from pandaharvester.harvestertest.panda_emulator.pytest_fixtures import emulator  # noqa: F401

from emulator_http import J, get, post, wait_for  # noqa: E402


def test_is_alive_and_envelope_encoding(emulator):
    assert get(emulator, "system/is_alive") == {"success": True, "message": "", "data": None}
    # without Accept/Content-Type JSON the real server answers with a Python repr
    r = requests.get(f"{emulator.base_url}/system/is_alive", timeout=10)
    assert r.text == "{'success': True, 'message': '', 'data': None}"
    r = requests.get(f"{emulator.base_url}/nosuch/function", headers=J, timeout=10)
    assert r.status_code == 404 and r.json()["success"] is False


def test_heartbeat_first_call_quirk(emulator):
    payload = {"harvester_id": "H1", "data": {"startTime": "datetime/2026-01-01 00:00:00.000000", "sw_version": "1.0"}}
    first = post(emulator, "harvester/heartbeat", payload)
    assert first["success"] is False and first["message"] == "database error in the PanDA server"
    assert post(emulator, "harvester/heartbeat", payload)["success"] is True
    hb = emulator.state()["heartbeats"]["H1"]
    assert hb["n_heartbeats"] == 1 and hb["last_heartbeat"] is not None
    assert hb["data"]["sw_version"] == "1.0"
    # unknown instance column → database error, nothing recorded
    bad = post(emulator, "harvester/heartbeat", {"harvester_id": "H1", "data": {"no_such_column": 1}})
    assert bad == {"success": False, "message": "database error in the PanDA server", "data": None}
    assert emulator.state()["heartbeats"]["H1"]["n_heartbeats"] == 1


def test_job_lifecycle_and_idempotent_final_update(emulator):
    ids = emulator.add_task("SITE_A", 3, cores=8, walltime=7200, n_files=2)
    none = post(emulator, "pilot/acquire_jobs", {"site_name": "OTHER", "n_jobs": 1, "prod_source_label": "managed"})
    assert none == {"success": False, "message": "No jobs in PanDA", "data": None}
    got = post(
        emulator,
        "pilot/acquire_jobs",
        {
            "site_name": "SITE_A",
            "n_jobs": 2,
            "prod_source_label": "managed",
            "node": "wn1",
            "harvester_id": "H1",
            "worker_id": 7,
        },
    )
    assert got["success"] and got["data"]["StatusCode"] == 0
    jobs = got["data"]["jobs"]
    assert [j["PandaID"] for j in jobs] == ids[:2]
    job = jobs[0]
    for key in (
        "jobsetID",
        "taskID",
        "attemptNr",
        "prodSourceLabel",
        "transformation",
        "jobPars",
        "coreCount",
        "resource_type",
        "maxWalltime",
        "minRamCount",
        "inFiles",
        "dispatchDblock",
        "GUID",
        "fsize",
        "checksum",
        "scopeIn",
        "outFiles",
        "scopeOut",
        "destinationDblock",
        "logFile",
        "ddmEndPointIn",
        "ddmEndPointOut",
        "prodDBlocks",
        "nSent",
    ):
        assert key in job, key
    assert job["coreCount"] == 8 and job["resourceType"] == "MCORE"
    # as the real server sends them: strings, and reqID present
    assert job["maxWalltime"] == "7200" and job["taskID"] == str(job["jediTaskID"]) and job["jobsetID"].isdigit()
    assert isinstance(job["reqID"], str) and isinstance(job["PandaID"], int)
    assert len(job["inFiles"].split(",")) == 2 == len(job["GUID"].split(",")) == len(job["scopeIn"].split(","))
    assert {j["status"] for j in emulator.jobs(panda_ids=ids[:2])} == {"sent"}

    pid = ids[0]
    running = post(
        emulator,
        "pilot/update_jobs_bulk",
        {
            "harvester_id": "H1",
            "job_list": [
                {"job_id": pid, "job_status": "running", "attempt_nr": 1, "node": "wn1"},
                {"job_id": 999, "job_status": "running"},
                {"job_id": ids[1], "job_status": "bogus"},
                {"job_id": ids[2], "job_status": "running"},  # not dispatched
            ],
        },
    )
    assert running["success"]
    res = running["data"]
    assert res[0] == {"success": True, "message": "", "data": {"StatusCode": 0, "command": "NULL"}}
    assert [r["success"] for r in res[1:]] == [False, False, False]
    wrong_attempt = post(
        emulator, "pilot/update_jobs_bulk", {"job_list": [{"job_id": pid, "job_status": "running", "attempt_nr": 5}]}
    )
    assert wrong_attempt["data"][0]["success"] is False

    final = {"harvester_id": "H1", "job_list": [{"job_id": pid, "job_status": "finished", "attempt_nr": 1}]}
    assert post(emulator, "pilot/update_jobs_bulk", final)["data"][0]["data"]["StatusCode"] == 0
    row = emulator.jobs(panda_ids=[pid])[0]
    assert row["status"] == "holding" and row["final_target"] == "finished"
    changes = row["n_changes"]
    # the same final report again: accepted, nothing changes
    assert post(emulator, "pilot/update_jobs_bulk", final)["data"][0]["success"] is True
    row = emulator.jobs(panda_ids=[pid])[0]
    assert row["n_changes"] == changes and row["n_reports"] == 3
    wait_for(lambda: emulator.jobs(panda_ids=[pid])[0]["status"] == "finished")
    assert post(emulator, "pilot/update_jobs_bulk", final)["data"][0]["success"] is True
    assert emulator.jobs(panda_ids=[pid])[0]["status"] == "finished"

    status = get(emulator, "job/get_status", {"job_ids": [pid, ids[2], 12345]})  # repeated keys
    assert status["data"] == [
        {"status": "finished", "command": None},
        {"status": "activated", "command": None},
        {"status": None, "command": None},
    ]


def test_get_list_arguments_are_repeated_keys_like_the_real_server(emulator):
    """job/get_status?job_ids=3&job_ids=4 works; the list as JSON text or comma-joined is refused
    with the real server's words (observed on panda-server 1.0.4)."""
    ids = emulator.add_task("SITE_LIST", 2)
    url = f"{emulator.base_url}/job/get_status"
    repeated = requests.get(f"{url}?job_ids={ids[0]}&job_ids={ids[1]}", headers=J, timeout=10).json()
    assert repeated["success"] is True and [e["status"] for e in repeated["data"]] == ["activated", "activated"]
    single = requests.get(f"{url}?job_ids={ids[0]}", headers=J, timeout=10).json()
    assert single["data"] == [{"status": "activated", "command": None}]
    as_json = get(emulator, "job/get_status", {"job_ids": json.dumps([3, 4])})
    assert as_json == {"success": False, "data": None, "message": "Type error: 'job_ids' with value '['[3, 4]']' "
                       "could not be casted to type List from list."}
    joined = get(emulator, "job/get_status", {"job_ids": f"{ids[0]},{ids[1]}"})
    assert joined["success"] is False
    assert joined["message"] == (f"Type error: 'job_ids' with value '['{ids[0]},{ids[1]}']' could not be casted to "
                                 f"type List from list.")


def test_method_and_arguments_checked_like_the_real_server(emulator):
    wrong_method = requests.get(f"{emulator.base_url}/pilot/acquire_jobs", params={"site_name": "X"}, headers=J,
                                timeout=10).json()
    assert wrong_method == {"success": False, "message": "expecting POST, received GET", "data": None}
    assert get(emulator, "harvester/get_current_worker_id", {"harvester_id": "nobody"})["success"] is False
    posted_get = requests.post(f"{emulator.base_url}/system/is_alive", json={}, headers=J, timeout=10).json()
    assert posted_get["message"] == "expecting GET, received POST"
    unexpected = post(emulator, "pilot/acquire_jobs", {"site_name": "X", "n_jobs": 1, "bogus": 1})
    assert unexpected["message"] == "Argument error: got an unexpected keyword argument 'bogus'"
    missing = post(emulator, "harvester/acquire_commands", {"harvester_id": "H"})
    assert missing["message"] == "Argument error: missing a required argument: 'n_commands'"
    # a JSON body is checked as it is; a query string is cast first
    wrong_type = post(emulator, "harvester/acquire_commands", {"harvester_id": "H", "n_commands": "5"})
    assert wrong_type["success"] is False and wrong_type["message"].startswith("Type error: 'n_commands'")
    uncastable = get(emulator, "job/get_status", {"job_ids": "abc"})
    assert uncastable["success"] is False and "could not be casted" in uncastable["message"]

    ids = emulator.add_task("SITE_SIG", 3)
    post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_SIG", "n_jobs": 3, "prod_source_label": "managed"})
    # each job of update_jobs_bulk is checked against the arguments of pilot/update_job
    reply = post(
        emulator,
        "pilot/update_jobs_bulk",
        {
            "job_list": [
                {"job_id": ids[0], "job_status": "running", "transExitCode": 0},
                {"job_id": ids[1], "job_status": "running", "trans_exit_code": "0"},
                {"job_id": ids[2], "job_status": "running", "trans_exit_code": 0, "n_events": 10, "max_rss": 1.5},
            ]
        },
    )["data"]
    assert reply[0] == {"success": False, "message": "Argument error: got an unexpected keyword argument "
                        "'transExitCode'", "data": None}
    assert reply[1]["success"] is False and reply[1]["message"].startswith("Type error: 'trans_exit_code'")
    assert reply[2]["data"] == {"StatusCode": 0, "command": "NULL"}
    rows = {r["panda_id"]: r for r in emulator.jobs(panda_ids=ids)}
    assert [rows[i]["status"] for i in ids] == ["sent", "sent", "running"]  # rejected jobs: nothing applied
    assert rows[ids[2]]["report"]["n_events"] == 10


def test_failed_report_and_kill(emulator):
    ids = emulator.add_task("SITE_K", 3)
    post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_K", "n_jobs": 2, "prod_source_label": "managed"})
    assert emulator.kill_job(ids[2])["status"] == "cancelled"  # never dispatched
    assert emulator.kill_job(ids[0])["command"] == "tobekilled"
    rep = post(emulator, "pilot/update_jobs_bulk", {"job_list": [{"job_id": ids[0], "job_status": "running"}]})
    assert rep["data"][0]["data"]["command"] == "tobekilled"
    st = get(emulator, "job/get_status", {"job_ids": [ids[0], ids[1]]})["data"]
    assert st == [{"status": "running", "command": "tobekilled"}, {"status": "sent", "command": None}]
    post(
        emulator,
        "pilot/update_jobs_bulk",
        {
            "job_list": [
                {"job_id": ids[0], "job_status": "failed", "job_sub_status": "cancelled"},
                {"job_id": ids[1], "job_status": "failed"},
            ]
        },
    )
    wait_for(
        lambda: (
            {j["panda_id"]: j["status"] for j in emulator.jobs(site="SITE_K")}
            == {ids[0]: "cancelled", ids[1]: "failed", ids[2]: "cancelled"}
        )
    )


def test_user_label_and_defined_jobs(emulator):
    emulator.add_task("SITE_U", 1, prod_source_label="user")
    emulator.add_task("SITE_U", 1, status="defined")
    got = post(
        emulator, "pilot/acquire_jobs", {"siteName": "SITE_U", "nJobs": 5, "prodSourceLabel": "user"}
    )  # camelCase aliases
    assert [j["prodSourceLabel"] for j in got["data"]["jobs"]] == ["user"]
    assert (
        post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_U", "n_jobs": 5, "prod_source_label": "managed"})[
            "success"
        ]
        is False
    )
    assert emulator.admin("POST", "activate", {})["data"]["activated"] == 1
    assert (
        len(
            post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_U", "n_jobs": 5, "prod_source_label": "managed"})[
                "data"
            ]["jobs"]
        )
        == 1
    )


def test_event_ranges(emulator):
    ids = emulator.add_task("SITE_ES", 1, events=5)
    job = post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_ES", "n_jobs": 1, "prod_source_label": "managed"})[
        "data"
    ]["jobs"][0]
    assert job["eventService"] == "True"
    params = {"job_id": ids[0], "jobset_id": int(job["jobsetID"]), "task_id": int(job["taskID"])}
    assert get(emulator, "event/get_available_event_range_count", params)["data"] == 5
    got = post(emulator, "event/acquire_event_ranges", {**params, "n_ranges": 3})["data"]
    assert got["StatusCode"] == 0 and len(got["eventRanges"]) == 3
    er = got["eventRanges"][0]
    assert set(er) >= {"eventRangeID", "startEvent", "lastEvent", "LFN", "GUID", "scope"}
    assert get(emulator, "event/get_available_event_range_count", params)["data"] == 2
    # legacy names, and a chunk larger than what is left
    rest = post(
        emulator,
        "event/acquire_event_ranges",
        {"pandaID": ids[0], "jobsetID": params["jobset_id"], "taskID": params["task_id"], "nRanges": 10},
    )
    assert len(rest["data"]["eventRanges"]) == 2
    ids_ = [e["eventRangeID"] for e in got["eventRanges"]]
    update = [
        {
            "eventRanges": [
                {"eventRangeID": ids_[0], "eventStatus": "finished"},
                {"eventRangeID": ids_[1], "eventStatus": "failed"},
                {"eventRangeID": "nope", "eventStatus": "finished"},
            ]
        }
    ]
    res = post(emulator, "event/update_event_ranges", {"event_ranges": json.dumps(update), "version": 1})["data"]
    assert res == {"StatusCode": 0, "Returns": [True, True, False]}
    again = post(emulator, "event/update_event_ranges", {"event_ranges": json.dumps(update), "version": 1})["data"]
    assert again["Returns"] == [True, True, False]
    counts = emulator.state()["event_ranges"]
    assert counts == {"finished": 1, "failed": 1, "sent": 3}


def test_statistics_metrics_dialogs_creds_metaconfig(emulator):
    empty = get(emulator, "statistics/active_job_stats_by_site")
    assert empty["success"] is False  # the real server reports empty statistics as a failure
    emulator.add_task("SITE_S", 2)
    emulator.add_task("SITE_S", 1, cores=8)
    assert get(emulator, "statistics/active_job_stats_by_site")["data"] == {"SITE_S": {"activated": 3}}
    detailed = get(emulator, "statistics/active_job_detailed_stats_by_site")["data"]
    assert detailed == {"SITE_S": {"managed": {"SCORE": {"activated": 2}, "MCORE": {"activated": 1}}}}
    rts = get(emulator, "metaconfig/get_resource_types")["data"]  # a bare list, as the real server sends
    assert isinstance(rts, list) and {r["resource_name"] for r in rts} >= {"SCORE", "MCORE"}
    assert all(set(r) == {"resource_name", "mincore", "maxcore", "minrampercore", "maxrampercore"} for r in rts)

    metrics = [["datetime/2026-01-01 00:00:00.000000", "host1", {"cpu_pc": 3.0}]]
    assert post(emulator, "harvester/update_service_metrics", {"harvester_id": "H3", "metrics": metrics})["success"]
    assert post(emulator, "harvester/update_service_metrics", {"harvester_id": "H3", "metrics": json.dumps(metrics)})[
        "success"
    ]
    dialogs = [{"diagID": 1, "moduleName": "submitter", "levelname": "ERROR", "diagMessage": "boom"}]
    assert post(emulator, "harvester/add_dialogs", {"harvester_id": "H3", "dialogs": dialogs})["success"]
    assert post(emulator, "harvester/add_dialogs", {"harvester_id": "H3", "dialogs": dialogs})["success"]
    st = emulator.state()
    assert st["metrics"] == {"H3": 1} and st["dialogs"] == {"H3": 1}

    assert "user_proxy" in get(emulator, "creds/get_proxy", {"role": "production"})["data"]
    key = get(emulator, "creds/get_token_key", {"client_name": "c1"})["data"]["tokenKey"]
    assert key == get(emulator, "credential/get_token_key", {"client_name": "c1"})["data"]["tokenKey"]
    pair = get(emulator, "creds/get_key_pair", {"public_key_name": "pub", "private_key_name": "priv"})["data"]
    assert set(pair) == {"public_key", "private_key"}
    missing = get(emulator, "creds/get_key_pair", {"public_key_name": "pub"})
    assert missing == {"success": False, "message": "Argument error: missing a required argument: 'private_key_name'",
                       "data": None}


def test_file_server(emulator):
    chunk = zlib.compress(b"line 1\n")
    r = requests.post(
        f"{emulator.base_url}/file_server/upload_jedi_log", files={"file": ("job.log", chunk)}, headers=J, timeout=10
    )
    assert r.json()["success"] is True and r.json()["data"].endswith("/cache/jedilog/job.log")
    # update_jedi_log appends (the real server's name for it); the chunk must be zlib-compressed
    r2 = requests.post(
        f"{emulator.base_url}/file_server/update_jedi_log",
        files={"file": ("job.log", zlib.compress(b"line 2\n"))},
        headers=J,
        timeout=10,
    )
    assert r2.json()["success"] is True
    assert requests.get(r.json()["data"], timeout=10).content == b"line 1\nline 2\n"
    raw = requests.post(
        f"{emulator.base_url}/file_server/update_jedi_log", files={"file": ("job.log", b"plain")}, headers=J, timeout=10
    ).json()
    assert raw["success"] is False and "zlib" in raw["message"]
    # checkpoints are named <task_id>_<sub_id> and stored as hpo_cp_<task_id>_<sub_id>
    r = requests.post(
        f"{emulator.base_url}/file_server/upload_hpo_checkpoint",
        files={"file": ("5_7", b"ckpt")},
        headers=J,
        timeout=10,
    )
    assert r.json()["success"] is True and r.json()["data"].endswith("hpo_cp_5_7")
    bad_name = requests.post(
        f"{emulator.base_url}/file_server/upload_hpo_checkpoint", files={"file": ("hpo_cp_5_7", b"x")}, headers=J,
        timeout=10,
    ).json()
    assert bad_name == {"success": False, "message": "Failed to extract task and sub IDs", "data": None}
    assert requests.post(f"{emulator.url}/cache/hpo_cp_5_7", headers=J, timeout=10).content == b"ckpt"
    # delete_hpo_checkpoint takes task_id and sub_id as strings, like the real server
    wrong_type = post(emulator, "file_server/delete_hpo_checkpoint", {"task_id": 5, "sub_id": "7"})
    assert wrong_type["success"] is False and wrong_type["message"].startswith("Type error: 'task_id'")
    assert post(emulator, "file_server/delete_hpo_checkpoint", {"task_id": "5", "sub_id": "7"})["success"] is True
    assert post(emulator, "file_server/delete_hpo_checkpoint", {"task_id": "5", "sub_id": "7"})["success"] is False
    no_file = requests.post(
        f"{emulator.base_url}/file_server/upload_jedi_log", data={"x": "1"}, headers=J, timeout=10
    ).json()
    assert no_file["success"] is False
    assert emulator.state()["uploads"] == 3


def test_cli_against_running_server_and_state_file(emulator, capsys):
    from pandaharvester.harvestertest.panda_emulator.cli import main

    assert main(["add-task", "--url", emulator.url, "--site", "SITE_C", "--n-jobs", "2", "--cores", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["panda_ids"]) == 2
    assert main(["set-queue-depth", "--url", emulator.url, "--site", "SITE_C", "--n", "7", "--harvester-id", "HC"]) == 0
    assert main(["kill-job", "--url", emulator.url, str(out["panda_ids"][0])]) == 0
    capsys.readouterr()
    assert main(["summary", "--url", emulator.url]) == 0
    text = capsys.readouterr().out
    assert "SITE_C" in text and "cancelled" in text
    emulator.stop()
    assert (
        main(
            [
                "add-command",
                "--state-file",
                str(emulator.state_file),
                "--harvester-id",
                "HC",
                "--command",
                "KILL_WORKERS",
                "--params",
                '{"workerIDs":[3]}',
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["summary", "--state-file", str(emulator.state_file), "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["commands"] == {"HC": {"new": 2}} and state["jobs"]["SITE_C"] == {"activated": 1, "cancelled": 1}


def test_state_survives_restart(emulator):
    ids = emulator.add_task("SITE_R", 3, events=2)
    post(emulator, "harvester/heartbeat", {"harvester_id": "HR", "data": {}})
    post(emulator, "harvester/heartbeat", {"harvester_id": "HR", "data": {}})
    post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_R", "n_jobs": 1, "prod_source_label": "managed"})
    post(
        emulator,
        "harvester/update_workers",
        {"harvester_id": "HR", "workers": [{"workerID": 5, "status": "running", "computingSite": "SITE_R"}]},
    )
    emulator.add_command("HR", "KILL_WORKERS", {"workerIDs": [5]})
    emulator.set_queue_depth("SITE_R", 9, command=False)
    before = emulator.state()
    port = emulator.port
    emulator.kill()  # as a crash would
    emulator.start()
    assert emulator.port == port
    after = emulator.state()
    for key in ("jobs", "n_tasks", "workers", "commands", "event_ranges", "queue_depth"):
        assert after[key] == before[key], key
    assert after["heartbeats"]["HR"]["n_heartbeats"] == 1
    # the known instance does not get the first-heartbeat failure again
    assert post(emulator, "harvester/heartbeat", {"harvester_id": "HR", "data": {}})["success"] is True
    more = emulator.add_task("SITE_R", 1)
    assert more[0] > max(ids)
    emulator.restart()
    assert [
        c["command"]
        for c in post(emulator, "harvester/acquire_commands", {"harvester_id": "HR", "n_commands": 5})["data"]
    ] == ["KILL_WORKERS"]


def test_concurrent_acquire_never_double_dispatches(emulator):
    from concurrent.futures import ThreadPoolExecutor

    emulator.add_task("SITE_P", 60)

    def grab(_):
        r = post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_P", "n_jobs": 3, "prod_source_label": "managed"})
        return [j["PandaID"] for j in r["data"]["jobs"]] if r["success"] else []

    with ThreadPoolExecutor(8) as pool:
        got = [pid for chunk in pool.map(grab, range(30)) for pid in chunk]
    assert len(got) == len(set(got)) == 60


def test_history_keeps_every_dispatch_and_final_report(emulator):
    ids = emulator.add_task("SITE_H", 3)
    got = post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_H", "n_jobs": 2, "prod_source_label": "managed",
                                                "node": "wn1", "harvester_id": "H1", "worker_id": 7})
    assert [j["PandaID"] for j in got["data"]["jobs"]] == ids[:2]
    first, second = ids[:2]

    def report(panda_id: int, status: str, attempt: int = 1) -> dict:
        job = {"job_id": panda_id, "job_status": status, "attempt_nr": attempt}
        return post(emulator, "pilot/update_jobs_bulk", {"job_list": [job], "harvester_id": "H1"})["data"][0]

    assert report(first, "running")["success"]  # not a final state: not kept
    assert report(first, "finished")["success"]
    assert report(first, "finished")["success"]  # a repeat: accepted, changes nothing, kept as not applied
    assert report(first, "failed")["success"]  # a conflicting one: kept, so a test can see it
    assert not report(second, "failed", attempt=9)["success"]  # wrong attempt: refused, kept
    assert not report(ids[2], "finished")["success"]  # never dispatched: refused, kept

    history = emulator.history()
    assert [(d["panda_id"], d["attempt_nr"], d["harvester_id"], d["worker_id"], d["node"])
            for d in history["dispatches"]] == [(first, 1, "H1", 7, "wn1"), (second, 1, "H1", 7, "wn1")]
    assert [(r["panda_id"], r["job_status"], r["attempt_nr"], r["prior_status"], r["applied"])
            for r in history["final_reports"]] == [
        (first, "finished", 1, "running", 1),
        (first, "finished", 1, "holding", 0),
        (first, "failed", 1, "holding", 0),
        (second, "failed", 9, "sent", 0),
        (ids[2], "finished", 1, "activated", 0),
    ]
    assert all(r["harvester_id"] == "H1" for r in history["final_reports"])
    only = emulator.history(panda_ids=[second])
    assert [d["panda_id"] for d in only["dispatches"]] == [second]
    assert [r["panda_id"] for r in only["final_reports"]] == [second]
    # a second hand-out of a job (the watchdog gives a lost dispatch out again) is a second record
    emulator.settings(sent_timeout=0)
    wait_for(lambda: emulator.jobs(panda_ids=[second])[0]["status"] == "activated", 10)
    post(emulator, "pilot/acquire_jobs", {"site_name": "SITE_H", "n_jobs": 1, "prod_source_label": "managed",
                                          "harvester_id": "H2"})
    again = emulator.history(panda_ids=[second])["dispatches"]
    assert [(d["attempt_nr"], d["harvester_id"]) for d in again] == [(1, "H1"), (2, "H2")]
