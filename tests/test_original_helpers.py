"""The original's helper modules that its plugins import: mover_utils, submitter_common,
token_utils, aux_extractor, monitor_common. Expected values are the original's results."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import requests

from pandaharvester.harvestersubmitter import submitter_common as sc


# ---------------------------------------------------------------- harvestermover.mover_utils
def test_construct_file_path_is_rucios_hashed_layout():
    from pandaharvester.harvestermover.mover_utils import construct_file_path

    assert construct_file_path("/data/rucio", "user.jdoe", "test.file.1") == "/data/rucio/user/jdoe/07/7c/test.file.1"
    assert construct_file_path("root://se.example.org//atlas", "mc16_13TeV", "EVNT.123._000001.pool.root.1") == \
        "root://se.example.org//atlas/mc16_13TeV/b4/21/EVNT.123._000001.pool.root.1"


# ---------------------------------------------------------------- harvestermonitor.monitor_common
def test_payload_error_strings():
    from pandaharvester.harvestermonitor.monitor_common import get_payload_errstr_from_ec

    assert get_payload_errstr_from_ec("atlas_pilot_wrapper", 2) == "wrapper killed stuck pilot"
    assert get_payload_errstr_from_ec("atlas_pilot_wrapper", 64) == "wrapper got cvmfs repos issue"
    assert get_payload_errstr_from_ec("atlas_pilot_wrapper", 0) == ""
    assert get_payload_errstr_from_ec("other", 1) == ""


# ---------------------------------------------------------------- submitter_common: pilot options
@pytest.mark.parametrize("pilot_type, version, expected", [
    ("RC", "3.7", {"prod_source_label": "rc_test2", "pilot_type_opt": "RC", "pilot_debug_str": "-d",
                   "pilot_url_str": "--piloturl http://cern.ch/atlas-panda-pilot/pilot3-dev.tar.gz"}),
    ("RC", "2", {"prod_source_label": "rc_test2", "pilot_type_opt": "RC", "pilot_debug_str": "-d",
                 "pilot_url_str": "--piloturl http://cern.ch/atlas-panda-pilot/pilot2-dev.tar.gz"}),
    ("ALRB", "3", {"prod_source_label": "rc_alrb", "pilot_type_opt": "ALRB", "pilot_url_str": "",
                   "pilot_debug_str": ""}),
    ("PT", "3", {"prod_source_label": "ptest", "pilot_type_opt": "PR", "pilot_debug_str": "-d",
                 "pilot_url_str": "--piloturl http://cern.ch/atlas-panda-pilot/pilot3-dev2.tar.gz"}),
    ("PR", "3", {"prod_source_label": "managed", "pilot_type_opt": "PR", "pilot_url_str": "", "pilot_debug_str": ""}),
    ("whatever", "3", {"prod_source_label": "managed", "pilot_type_opt": "PR", "pilot_url_str": "",
                       "pilot_debug_str": ""}),
])
def test_complicated_pilot_options(pilot_type, version, expected):
    assert sc.get_complicated_pilot_options(pilot_type, pilot_version=version, prod_source_label="managed") == expected


def test_pilot_url_override_and_release_candidate_share():
    overridden = sc.get_complicated_pilot_options("RC", pilot_url="http://x/p.tgz")
    assert overridden["pilot_url_str"] == "--piloturl http://x/p.tgz"
    always = sc.get_complicated_pilot_options("PR", pilot_version="3", prod_rc_permille=1000)
    assert always["pilot_url_str"] == "--piloturl http://pandaserver.cern.ch:25085/cache/pilot/pilot3-rc.tar.gz"
    assert sc.get_complicated_pilot_options("PR", prod_rc_permille=0)["pilot_url_str"] == ""
    # only PR pilots take the release candidate
    assert sc.get_complicated_pilot_options("other", prod_rc_permille=1000)["pilot_url_str"] == ""
    # each call gets its own dict
    first = sc.get_complicated_pilot_options("ALRB")
    first["pilot_url_str"] = "changed"
    assert sc.get_complicated_pilot_options("ALRB")["pilot_url_str"] == ""


def test_python_joblabel_jobtype_options():
    assert sc.get_python_version_option("3.9", "managed") == "--pythonversion 3"
    assert sc.get_python_version_option("2.7", "ptest") == ""
    assert sc.get_joblabel("managed") == "unified" and sc.get_joblabel("user") == "unified"
    assert sc.get_joblabel("ptest") == "ptest"
    assert sc.get_joblabel("managed", is_unified_dispatch=False) == "managed"
    assert sc.get_pilot_job_type("managed") == "unified"
    assert sc.get_pilot_job_type("user", is_unified_dispatch=False) == "user"


def test_resource_type_option():
    all_types = ["SCORE", "MCORE", "SCORE_HIMEM", "MCORE_HIMEM", "MCORE_LOMEM"]
    assert sc.get_resource_type("MCORE", True, all_types) == "MCORE"
    assert sc.get_resource_type("MCORE_LOMEM", True, all_types, is_pilot_option=True) == "--resource-type MCORE_LOMEM"
    assert sc.get_resource_type("MCORE", False, all_types) == ""
    assert sc.get_resource_type("ANY", True, all_types) == ""
    # the older call (name, is_unified_queue, is_pilot_option) with the standard types
    assert sc.get_resource_type("SCORE", True, True) == "--resource-type SCORE"
    assert sc.get_resource_type("SCORE", True) == "SCORE"
    assert sc.get_resource_type("MCORE_LOMEM", True, False) == ""


# ---------------------------------------------------------------- submitter_common: CE weighting
LIMITS = {"nQueueLimitWorker": 10, "maxWorkers": 100}
NOW = {"ceA": {"submitted": 2, "running": 5}, "ceB": {"submitted": 12, "running": 3},
       "ceC": {"submitted": 0, "running": 0}}
HISTORY = {"ceA": {"submitted": 1, "running": 10, "finished": 20}, "ceB": {"submitted": 4, "running": 2, "finished": 2}}
STATS = (LIMITS, NOW, HISTORY, 21600, 5)


def test_ce_weighting_matches_the_original():
    total, weights, throughputs, target = sc.get_ce_weighting(["ceA", "ceB", "ceC"], STATS, False, 50)
    assert (total, target) == (3000.0, 15.0)
    assert weights == pytest.approx({"ceA": 2431.3762201345935, "ceB": 0.0, "ceC": 568.6237798654065}, rel=1e-12)
    assert throughputs == pytest.approx({"ceA": 11.090354888959125, "ceB": 2.351146659608477, "ceC": 0.0}, rel=1e-12)
    weights_80 = sc.get_ce_weighting(["ceA", "ceB", "ceC"], STATS, True, 80)[1]
    assert weights_80 == pytest.approx({"ceA": 1809.0389336715361, "ceB": 0.0, "ceC": 1190.961066328464}, rel=1e-12)


def test_ce_weighting_slave_queue_targets_what_is_queued():
    now = {"ceA": {"submitted": 1, "running": 5}, "ceB": {"submitted": 1, "running": 0}}
    history = {"ceA": {"submitted": 1, "running": 10, "finished": 20}}
    slave = sc.get_ce_weighting(["ceA", "ceB"], (LIMITS, now, history, 3600, 3), True, 0)
    assert slave[3] == 5.0  # min(2 queued, 10) + 3 new
    assert slave[1] == pytest.approx({"ceA": 1999.6702355721413, "ceB": 0.3297644278587379}, rel=1e-12)
    assert sc.get_ce_weighting(["ceA", "ceB"], (LIMITS, now, history, 3600, 3), False, 0)[3] == 13.0


def test_ce_weighting_without_history_is_equal():
    weighting = sc.get_ce_weighting(["ce1", "ce2"], ({"nQueueLimitWorker": 4}, {}, {}, 3600, 2))
    assert weighting == (2000.0, {"ce1": 1000.0, "ce2": 1000.0}, {"ce1": 0.0, "ce2": 0.0}, 6.0)


def test_choose_ce_follows_the_weights():
    assert sc.choose_ce((1000.0, {"a": 0.0, "b": 1000.0, "c": 0.0}, {}, 1)) == "b"
    assert sc.choose_ce((2000.0, {"a": 0.0, "b": 0.0}, {}, 1)) is None
    weighting = sc.get_ce_weighting(["ceA", "ceB", "ceC"], STATS)
    picks = {sc.choose_ce(weighting) for _ in range(200)}
    assert "ceB" not in picks and picks <= {"ceA", "ceC"}  # ceB queues more than nQueueLimitWorker


def test_ce_stats_weighting_display():
    weighting = sc.get_ce_weighting(["ceA", "ceB", "ceC"], STATS, False, 50)
    assert sc.get_ce_stats_weighting_display(["ceA", "ceB", "ceC"], STATS, weighting, 50) == (
        'maxWorkers=100 nQueueLimitWorker=10 nNewWorkers=5 target_Q=15 hist_timeWindow=21600 fairshare_perc=50  ; '
        '"ceA": now_S=2 now_R=5 hist_S=1 hist_R=10 hist_F=20 T=11.09 W=2431.376  , '
        '"ceB": now_S=12 now_R=3 hist_S=4 hist_R=2 hist_F=2 T=2.35 W=0.000  , '
        '"ceC": now_S=0 now_R=0 hist_S=0 hist_R=0 hist_F=0 T=0.00 W=568.624 ')


# ---------------------------------------------------------------- harvestermisc.token_utils
def test_endpoint_to_filename_and_scopes():
    from pandaharvester.harvestermisc import token_utils

    assert token_utils.endpoint_to_filename("ce01.example.org:9619") == "71bfbefb5adf3d054c7a7522d8039c0b"
    assert token_utils.WLCG_scopes.COMPUTE_ALL == "compute.read compute.modify compute.create compute.cancel"


class _Issuer(BaseHTTPRequestHandler):
    """A token issuer: POST /token with the right client credentials gets a token."""

    requests_seen: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        _Issuer.requests_seen.append((self.path, form))
        ok = self.path == "/token" and form.get("client_secret") == ["s3cret"]
        body = json.dumps({"access_token": "tok-" + form.get("audience", ["none"])[0]} if ok
                          else {"error": "invalid_client"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def issuer_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Issuer.requests_seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_issuer_broker_client_credentials_flow(issuer_url):
    from pandaharvester.harvestermisc.token_utils import IssuerBroker

    broker = IssuerBroker(issuer_url, "harvester", "s3cret", name="atlas")
    assert broker.token_request_url == f"{issuer_url}/token" and broker.timeout == 3
    token = broker.get_access_token(aud="https://ce01.example.org", scope="compute.read")
    assert token == "tok-https://ce01.example.org"
    path, form = _Issuer.requests_seen[-1]
    assert path == "/token"
    assert form == {"grant_type": ["client_credentials"], "client_id": ["harvester"], "client_secret": ["s3cret"],
                    "audience": ["https://ce01.example.org"], "scope": ["compute.read"]}
    assert broker.get_access_token() == "tok-none"
    assert set(_Issuer.requests_seen[-1][1]) == {"grant_type", "client_id", "client_secret"}  # None left out
    assert "s3cret" not in repr(broker)


def test_issuer_broker_raises_on_refusal(issuer_url):
    from pandaharvester.harvestermisc.token_utils import IssuerBroker

    with pytest.raises(requests.HTTPError):
        IssuerBroker(issuer_url, "harvester", "wrong").get_access_token(aud="x")


# ---------------------------------------------------------------- harvesterextractor.aux_extractor
def _job(**params):
    return SimpleNamespace(jobParams={"transformation": None, "jobPars": "", "prodSourceLabel": "managed", **params})


def test_aux_inputs_of_an_analysis_job():
    from pandaharvester.harvesterextractor.aux_extractor import AuxExtractor

    job = _job(prodSourceLabel="user", transformation="http://pandaserver.cern.ch:25085/trf/user/runGen-00-00-02",
               jobPars="-j \"\" --sourceURL https://aipanda048.cern.ch:25443 -r ./ -a jobO.123.tar.gz -i x",
               container_name="atlas/athena:21.0.15")
    inputs = AuxExtractor(containerPrefix="docker://").get_aux_inputs(job)
    assert job.jobParams["sourceURL"] == "https://aipanda048.cern.ch:25443"
    assert inputs == {
        "runGen-00-00-02": {"scope": "aux_input", "INTERNAL_FileType": "aux_input",
                            "INTERNAL_URL": "http://pandaserver.cern.ch:25085/trf/user/runGen-00-00-02"},
        "jobO.123.tar.gz": {"scope": "aux_input", "INTERNAL_FileType": "aux_input",
                            "INTERNAL_URL": "https://aipanda048.cern.ch:25443/cache/jobO.123.tar.gz"},
        "athena:21.0.15": {"scope": "aux_input", "INTERNAL_FileType": "aux_input",
                           "INTERNAL_URL": "docker://atlas/athena:21.0.15"},
    }


def test_aux_inputs_of_a_production_job():
    from pandaharvester.harvesterextractor.aux_extractor import AuxExtractor

    job = _job(transformation="Reco_tf.py", jobPars="--sourceURL https://x:25443 -i sandbox.tgz",
               container_name="docker://atlas/athena:22")
    # no blank before --sourceURL: not a source URL (as in the original)
    assert list(AuxExtractor(containerPrefix="docker://").get_aux_inputs(job)) == ["athena:22"]
    job = _job(jobPars="--maxEvents 10 --sourceURL https://x:25443 -i sandbox.tgz -a not_this.tgz")
    assert AuxExtractor().get_aux_inputs(job) == {
        "sandbox.tgz": {"scope": "aux_input", "INTERNAL_FileType": "aux_input",
                        "INTERNAL_URL": "https://x:25443/cache/sandbox.tgz"}}
    assert AuxExtractor().get_aux_inputs(_job()) == {}


# ---------------------------------------------------------------- harvestermisc.gitlab_utils
def test_gitlab_job_params_round_trip_owner_only(tmp_path):
    import os
    import stat

    from pandaharvester.harvestermisc import gitlab_utils

    worker = SimpleNamespace(get_access_point=lambda: str(tmp_path))
    params = {"project_api": "https://gitlab.example.org/api/v4/projects", "project_id": 7,
              "secrets": {"trigger": "t0ken"}}
    gitlab_utils.store_job_params(worker, params)
    path = tmp_path / "__job_params__"
    assert gitlab_utils.make_file_path(worker) == str(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert gitlab_utils.get_job_params(worker) == params
    os.chmod(path, 0o644)  # an existing file is tightened when rewritten
    gitlab_utils.store_job_params(worker, {"x": 1})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and gitlab_utils.get_job_params(worker) == {"x": 1}
