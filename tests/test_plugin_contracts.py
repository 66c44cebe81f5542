"""Plugin contracts: the roles' methods as the original names them, the one reply validator, the field guard."""

from __future__ import annotations

import pytest

from pandaharvester.errors import PluginError, PluginReplyError
from pandaharvester.harvestercore.job_spec import JobSpec
from pandaharvester.harvestercore.plugin_contracts import (
    ROLES,
    FieldGuard,
    expected_shape,
    get_role,
    new_spec_fields,
    reply_as_is,
    validate_reply,
)
from pandaharvester.harvestercore.spec_base import LazyBlob
from pandaharvester.harvestercore.work_spec import WorkSpec

# the original's method names and parameters (harvester-interfaces.md §3); (required, alternatives)
ORIGINAL = {
    "submitter": {"submit_workers(workspec_list)": True},
    "monitor": {"check_workers(workspec_list)": True, "report_updated_workers(time_window)": False},
    "sweeper": {"kill_workers(workspec_list)": True, "kill_worker(workspec)": False, "sweep_worker(workspec)": True},
    "preparator": {"trigger_preparation(jobspec)": True, "check_stage_in_status(jobspec)": True,
                   "resolve_input_paths(jobspec)": True},
    "stager": {"trigger_stage_out(jobspec)": True, "check_stage_out_status(jobspec)": True,
               "zip_output(jobspec)": False},
    "zipper": {"zip_output(jobspec)": True, "async_zip_output(jobspec)": False, "post_zip_output(jobspec)": False},
    "workermaker": {"make_worker(jobspec_list, queue_config, job_type, resource_type)": True,
                    "get_num_jobs_per_worker(n_workers)": False, "get_num_workers_per_job(n_workers)": False,
                    "num_ready_resources()": False, "get_max_workers_per_job_in_total()": False,
                    "get_max_workers_per_job_per_cycle()": False},
    "throttler": {"to_be_throttled(queue_config)": True},
    "credmanager": {"check_credential()": True, "renew_credential()": True, "check_credential_lifetime()": False},
    "extractor": {"get_aux_inputs(jobspec)": True},
}


@pytest.mark.parametrize("role", sorted(ORIGINAL))
def test_role_methods_are_the_originals(role):
    assert {m.call_text(): m.required for m in get_role(role).methods} == ORIGINAL[role]


def test_messenger_methods_are_base_messengers_and_optional():
    from pandaharvester.harvestermessenger.base_messenger import BaseMessenger

    methods = get_role("messenger").methods
    assert all(not m.required for m in methods)
    assert all(callable(getattr(BaseMessenger, m.name)) for m in methods)


def test_alternatives_and_aliases():
    assert get_role("sweeper").method("kill_workers").alternatives == ("kill_worker",)
    assert get_role("sweeper").method("kill_worker").name == "kill_worker"  # its own entry, not the bulk one
    assert get_role("preparator").method("check_status").name == "check_stage_in_status"
    assert get_role("workerMaker") is ROLES["workermaker"] and get_role("aux_preparator") is ROLES["preparator"]
    assert get_role("credmanagers") is ROLES["credmanager"]
    with pytest.raises(KeyError, match="unknown plugin role 'painter': use one of submitter"):
        get_role("painter")


def _workers(n: int) -> list[WorkSpec]:
    workers = []
    for worker_id in range(1, n + 1):
        worker = WorkSpec()
        worker.workerID = worker_id
        workers.append(worker)
    return workers


class MySubmitter:
    queueName = "Q1"


# ---------------------------------------------------------------------------- the validator
@pytest.mark.parametrize("role, method, reply, n, normalised", [
    ("submitter", "submit_workers", [(True, ""), (False, "no"), (None, None)], 3,
     [(True, ""), (False, "no"), (None, "")]),
    ("submitter", "submit_workers", ([1, ValueError("x")],), 1, [(True, "x")]),  # the original's agents test truth
    ("monitor", "check_workers", (True, [("running", None), (None, "unreachable")]), 2,
     (True, [("running", ""), (None, "unreachable")])),
    ("monitor", "check_workers", (False, "slurmctld down"), 2, (False, "slurmctld down")),
    ("monitor", "report_updated_workers", [("12", 1.5)], None, [(12, 1.5)]),
    ("sweeper", "kill_workers", ((True, ""), (False, "denied")), 2, [(True, ""), (False, "denied")]),
    ("sweeper", "sweep_worker", (True, ""), None, (True, "")),
    ("preparator", "check_status", (None, "transferring"), None, (None, "transferring")),
    ("credmanager", "renew_credential", True, None, (True, "")),  # the CredManager agent takes a bare status
    ("credmanager", "check_credential", 0, None, False),
    ("credmanager", "check_credential_lifetime", None, None, None),
    ("workermaker", "make_worker", None, None, None),
    ("extractor", "get_aux_inputs", None, None, {}),
    ("messenger", "job_requested", 3, None, 3),
])
def test_good_replies_are_normalised(role, method, reply, n, normalised):
    assert validate_reply(role, method, reply, n) == normalised


_SAMPLES = [None, True, False, 0, 1, 2, -1, 1.5, "ok", {}, {"a": {}}, [], [1], (), {1}, object()]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_fast_path_accepts_only_replies_the_full_check_returns_unchanged(role):
    """The agents skip the full check when ``reply_as_is`` says yes: it must never say yes to a
    reply the full check would refuse or change (a 0 where a bool is due becomes False)."""
    checked = 0
    for method in (m.name for m in get_role(role).methods):
        as_is = reply_as_is(role, method)
        if as_is is None:
            continue
        for reply in _SAMPLES:
            if not as_is(reply):
                continue
            checked += 1
            assert validate_reply(role, method, reply, 1) is reply, (role, method, reply)
    if role in ("credmanager", "messenger"):
        assert checked, f"no method of {role} has a fast path"


def test_fast_path_refuses_what_the_full_check_changes():
    assert not reply_as_is("credmanager", "check_credential")(0)
    assert validate_reply("credmanager", "check_credential", 0) is False
    assert reply_as_is("messenger", "job_requested")(3)
    assert reply_as_is("submitter", "submit_workers") is None  # per-item replies always get the full check


@pytest.mark.parametrize("role, method, reply, problem", [
    ("submitter", "submit_workers", [(True, "")], "returned 1 reply for 2 workers (one reply per worker, in order)"),
    ("submitter", "submit_workers", "ok", "returned 'ok' (str), not a list of (status, diagnostic) pairs"),
    ("submitter", "submit_workers", [(True, ""), ("yes", "")], "reply #1 (workerID=2): status 'yes' (str) is not "
                                                               "one of True|False|None"),
    ("submitter", "submit_workers", [(True, ""), (True,)], "reply #1 (workerID=2): entry (True,) is not a "
                                                           "(status, diagnostic) pair"),
    ("monitor", "check_workers", (True, [("finshed", ""), ("running", "")]),
     "reply #0 (workerID=1): unknown status 'finshed': not a WorkSpec.ST_* value"),
    ("monitor", "check_workers", [("running", ""), ("running", "")], "its first item is ('running', ''), not True or "
                                                                     "False"),
    ("monitor", "check_workers", (True, [("running", "")]), "returned 1 reply for 2 workers"),
    ("sweeper", "kill_workers", [(None, ""), (True, "")], "status None (NoneType) is not one of True|False"),
])
def test_bad_replies_raise_one_clear_error(role, method, reply, problem):
    with pytest.raises(PluginReplyError) as caught:
        validate_reply(role, method, reply, items=_workers(2), plugin=MySubmitter())
    error = caught.value
    assert isinstance(error, PluginError)
    text = str(error)
    assert text.startswith(f"queue 'Q1', {role} plugin test_plugin_contracts.MySubmitter.{method}: ")
    assert problem in text
    assert text.endswith(f"; expected {expected_shape(role, method)}")
    assert (error.role, error.method, error.queue, error.plugin) == (role, method, "Q1",
                                                                     "test_plugin_contracts.MySubmitter")


def test_error_without_plugin_or_queue_still_names_role_and_method():
    with pytest.raises(PluginReplyError, match=r"^stager plugin method trigger_stage_out: returned 'done'"):
        validate_reply("stager", "trigger_stage_out", "done")
    with pytest.raises(PluginReplyError, match="expected a WorkSpec, or None"):
        validate_reply("workermaker", "make_worker", {"nCore": 1})
    with pytest.raises(PluginReplyError, match="is not lfn .str.: attributes .dict."):
        validate_reply("extractor", "get_aux_inputs", {"a.tgz": "http://x/a.tgz"})


# ---------------------------------------------------------------------------- the field guard
def test_field_guard_lists_fields_outside_the_role():
    worker, other = _workers(2)
    job = JobSpec()
    job.PandaID = 7
    worker.set_jobspec_list([job])
    guard = FieldGuard("submitter", [worker, other])
    worker.batchID = "123"
    worker.set_log_file("stdout", "https://logs/1.out")
    worker.status = WorkSpec.ST_running
    job.subStatus = "submitted"
    job.set_one_attribute("pilotID", "x")
    other.workAttributes = {"a": 1}
    assert [(spec, names) for spec, names in guard.violations()] == [(worker, ["status"]), (job, ["subStatus"])]
    lines = guard.warnings(plugin=MySubmitter(), method="submit_workers")
    assert lines[0].startswith("queue 'Q1', submitter plugin test_plugin_contracts.MySubmitter.submit_workers set "
                               "status of WorkSpec workerID=1, which a submitter plugin may not set (it may set: ")
    assert "JobSpec PandaID=7" in lines[1]


def test_field_guard_sees_in_place_blob_changes_and_leaves_lazy_blobs_undecoded():
    job = JobSpec()
    job.PandaID = 8
    job.jobParams = {"a": 1}
    job.__dict__["metaData"] = LazyBlob('{"big": "payload"}')
    job.reset_changed_list()
    guard = FieldGuard("preparator", [job])
    job.jobParams["inFilePaths"] = "x"  # in place, not recorded by the spec itself
    assert guard.changed() == [(job, ["jobParams"])]
    assert guard.violations() == []
    assert type(job.__dict__["metaData"]) is LazyBlob, "the guard decoded a blob nobody read"


def test_new_spec_fields_of_a_made_worker():
    worker = WorkSpec()
    worker.nCore = 8
    worker.status = WorkSpec.ST_submitted
    [line] = new_spec_fields("workermaker", worker, plugin="m.Maker", method="make_worker")
    assert "workermaker plugin m.Maker.make_worker set status of WorkSpec" in line
    worker.status = None
    assert new_spec_fields("workermaker", worker) == []


def test_field_guard_tracked_sees_assignments_at_the_cost_of_the_change_record():
    worker, other = _workers(2)
    worker.status = WorkSpec.ST_submitted  # changed before the call: the guard keeps its value
    job = JobSpec()
    job.PandaID = 9
    worker.set_jobspec_list([job])
    job.reset_changed_list()
    other.reset_changed_list()
    guard = FieldGuard("submitter", [worker, other], tracked=True)
    worker.status = WorkSpec.ST_running  # again, to another value
    worker.batchID = "b1"
    job.subStatus = "x"
    other.set_work_attributes({"a": 1})
    assert guard.violations() == [(worker, ["status"]), (job, ["subStatus"])]
    line = guard.warning(plugin=MySubmitter(), method="submit_workers")
    assert line.startswith("queue 'Q1', submitter plugin test_plugin_contracts.MySubmitter.submit_workers set fields "
                           "a submitter plugin may not set: status of WorkSpec workerID=1; subStatus of JobSpec "
                           "PandaID=9 (it may set WorkSpec: batchID, ")
    assert "; JobSpec: jobAttributes)" in line
    assert FieldGuard("submitter", [other], tracked=True).warning() is None


def test_monitor_reply_can_leave_an_unknown_status_to_the_agent():
    bad = []
    reply = (True, [("running", ""), ("exploded", None)])
    assert validate_reply("monitor", "check_workers", reply, items=_workers(2), plugin=MySubmitter(),
                          bad_items=bad) == (True, [("running", ""), ("exploded", "")])
    (error,) = bad
    assert isinstance(error, PluginReplyError) and error.item == "workerID=2"
    assert "reply #1 (workerID=2): unknown status 'exploded'" in str(error)
    with pytest.raises(PluginReplyError, match="returned 1 reply for 2 workers"):  # the shape still fails it all
        validate_reply("monitor", "check_workers", (True, [("exploded", "")]), items=_workers(2), bad_items=bad)


@pytest.mark.parametrize("role, method, reply, normalised", [
    # None where the original's agents read it as no failure / nothing
    ("messenger", "feed_jobs", None, None), ("messenger", "feed_events", 1, True),
    ("messenger", "get_files_to_stage_out", None, None), ("messenger", "get_panda_ids", None, None),
    ("messenger", "kill_requested", None, None), ("preparator", "resolve_input_paths", (None, ""), (None, "")),
    ("throttler", "to_be_throttled", (None, ""), (None, "")), ("credmanager", "check_credential", None, None),
])
def test_replies_the_original_agents_accept_are_accepted(role, method, reply, normalised):
    assert validate_reply(role, method, reply) == normalised


def test_readme_lists_the_fields_each_role_may_set():
    from pathlib import Path

    from pandaharvester.harvestercore.plugin_contracts.roles import settable_fields_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("<!-- settable fields: generated by plugin_contracts.roles.settable_fields_table() -->\n")
    block = readme[readme.index("\n", start) + 1:readme.index("\n<!-- settable fields: end -->")]
    assert block == settable_fields_table(), "README out of date: paste the output of python -c 'from " \
        "pandaharvester.harvestercore.plugin_contracts.roles import settable_fields_table as t; print(t())'"
