"""harvester_config: lazy loading, sources, value conversion, errors, masking, reload."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import harvester_env
from pandaharvester.errors import ConfigError, ConfigKeyError
from pandaharvester.harvesterconfig import _parser, harvester_config
from pandaharvester.harvesterconfig._section import MASK, ConfigSection, is_secret_key

ENV_KEYS = ("PANDA_HOME", "HARVESTER_CONFIG_FILE", "HARVESTER_INSTANCE_CONFIG_URL")


@pytest.fixture(autouse=True)
def restore_env():
    """Every test here may touch the environment: put it back and reload the session cfg."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    harvester_config.reload()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _cfg_path(home: Path) -> Path:
    return home / "etc" / "panda" / "panda_harvester.cfg"


# ----------------------------------------------------------------------------- lazy import

def test_import_reads_nothing_and_access_reports_the_broken_file(tmp_path: Path) -> None:
    _write(_cfg_path(tmp_path), "this is [not a cfg\n")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["PANDA_HOME"] = str(tmp_path)
    code = (
        "from pandaharvester.harvesterconfig import harvester_config as h\n"
        "assert h._state is None, 'import must not load'\n"
        "assert getattr(h, '__wrapped__', None) is None\n"
        "try:\n"
        "    h.master\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ConfigError")
    assert str(_cfg_path(tmp_path)) in out.stdout


def test_dunder_lookups_do_not_load(tmp_path: Path) -> None:
    os.environ["HARVESTER_CONFIG_FILE"] = str(tmp_path / "missing.cfg")
    harvester_config.reload()
    assert getattr(harvester_config, "__wrapped__", None) is None
    assert not hasattr(harvester_config, "__path__")
    with pytest.raises(ConfigError):
        harvester_config.master  # noqa: B018


# ----------------------------------------------------------------------------- conversion

def test_value_conversion(fresh_home) -> None:
    os.environ["HARV_TEST_VAR"] = "/data/harv"
    fresh_home({"testsec": {
        "anInt": "42", "negInt": "-7", "aFloat": "2.5", "expFloat": "1e3", "yes": "True", "no": "False",
        "nothing": "None", "text": "hello world", "version": "2.7.2", "pct": "50%",
        "multi": "\n  a line\n  b\n\n  c", "single": "\n  ALL",
        "js": '\n  {"x": [1, 2],\n   "y": "${HARV_TEST_VAR}/in/json"}',
        "jlist": '\n  [{"module": "m", "name": "N"},\n   3]',
        "title": "/dev/shm/$(TITLE)_fifo.db", "dollar": "cost$$5", "lone": "a $ b",
        "envBraced": "${HARV_TEST_VAR}/sub", "envBare": "$HARV_TEST_VAR", "envNum": "${HARV_TEST_NUM}",
        "host": "$HOSTNAME", "CamelCase": "kept", "empty": "",
    }})
    # set after writing the cfg: the reload below must pick it up (env re-evaluated)
    os.environ["HARV_TEST_NUM"] = "12"
    harvester_config.reload()
    sec = harvester_config.testsec
    assert sec.anInt == 42 and isinstance(sec.anInt, int)
    assert sec.negInt == -7
    assert sec.aFloat == 2.5 and sec.expFloat == 1000.0
    assert sec.yes is True and sec.no is False and sec.nothing is None
    assert sec.text == "hello world" and sec.version == "2.7.2" and sec.pct == "50%"
    assert sec.multi == ["a line", "b", "c"]
    assert sec.single == ["ALL"]
    assert sec.js == {"x": [1, 2], "y": "/data/harv/in/json"}
    assert sec.jlist == [{"module": "m", "name": "N"}, 3]
    assert sec.title == "/dev/shm/$(TITLE)_fifo.db"
    assert sec.dollar == "cost$5" and sec.lone == "a $ b"
    assert sec.envBraced == "/data/harv/sub" and sec.envBare == "/data/harv"
    assert sec.envNum == 12
    assert sec.host == socket.gethostname().split(".")[0]
    assert sec.CamelCase == "kept" and not hasattr(sec, "camelcase")
    assert sec.empty == ""
    # harvester_id stays a string even when it looks like a number
    fresh_home({"master": {"harvester_id": "0042"}})
    assert harvester_config.master.harvester_id == "0042"


def test_missing_env_var_names_section_key_and_variable(fresh_home) -> None:
    os.environ.pop("HARV_SURELY_UNSET", None)
    home = fresh_home({"submitter": {"workDir": "${HARV_SURELY_UNSET}/work"}})
    with pytest.raises(ConfigError) as info:
        harvester_config.submitter  # noqa: B018
    msg = str(info.value)
    assert "[submitter]" in msg and "workDir" in msg and "HARV_SURELY_UNSET" in msg
    assert msg.startswith(f"{_cfg_path(home)}: ")  # the file that holds the value
    assert not isinstance(info.value, AttributeError)
    # the error stays until the cause is fixed and the cfg reloaded
    with pytest.raises(ConfigError):
        harvester_config.master  # noqa: B018
    os.environ["HARV_SURELY_UNSET"] = "/w"
    harvester_config.reload()
    assert harvester_config.submitter.workDir == "/w/work"


def test_env_var_inside_json_and_list_lines_missing(fresh_home) -> None:
    os.environ.pop("HARV_SURELY_UNSET", None)
    fresh_home({"monitor": {"eventBasedPlugins": '\n  [{"module": "${HARV_SURELY_UNSET}"}]'}})
    with pytest.raises(ConfigError, match=r"\[monitor\] eventBasedPlugins .*HARV_SURELY_UNSET"):
        harvester_config.monitor  # noqa: B018
    fresh_home({"cacher": {"data": "\n  a||file://${HARV_SURELY_UNSET}/x"}})
    with pytest.raises(ConfigError, match=r"\[cacher\] data .*HARV_SURELY_UNSET"):
        harvester_config.cacher  # noqa: B018


def test_bad_json_is_a_config_error(fresh_home) -> None:
    home = fresh_home({"monitor": {"eventBasedPlugins": '\n  [{"module": oops}]'}})
    with pytest.raises(ConfigError, match=r"\[monitor\] eventBasedPlugins looks like JSON") as info:
        harvester_config.monitor  # noqa: B018
    assert str(_cfg_path(home)) in str(info.value)


def test_conversion_errors_name_the_source_that_set_the_value(fresh_home, tmp_path) -> None:
    os.environ.pop("HARV_SURELY_UNSET", None)
    home = fresh_home()
    cm = _write(home / "etc" / "configmap" / "panda_harvester_configmap.json",
                json.dumps({"sweeper": {"diskHighWatermark": "${HARV_SURELY_UNSET}"}}))
    harvester_config.reload()
    with pytest.raises(ConfigError) as info:
        harvester_config.sweeper  # noqa: B018
    assert str(info.value).startswith(f"{cm}: [sweeper] diskHighWatermark")
    cm.unlink()
    remote = _write(tmp_path / "remote.cfg", "[master]\nharvester_id = has space\n[extra]\nx = $HARV_SURELY_UNSET\n")
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = remote.as_uri()
    harvester_config.reload()
    with pytest.raises(ConfigError) as info:
        harvester_config.master  # noqa: B018
    assert str(info.value).startswith(f"{remote.as_uri()}: [extra] x uses")
    _write(remote, "[master]\nharvester_id = has space\n")
    harvester_config.reload()
    with pytest.raises(ConfigError, match=f"harvester_id = 'has space' in {remote.as_uri()} contains whitespace"):
        harvester_config.master  # noqa: B018


def test_convert_value_unit() -> None:
    env = {"X": "1"}
    assert _parser.convert_value("s", "k", "$X", env) == 1
    assert _parser.convert_value("s", "k", "${X}0", env) == 10
    assert _parser.convert_value("s", "k", "$$X", env) == "$X"
    assert _parser.convert_value("s", "k", 7, env) == 7  # configmap values keep their type
    assert _parser.convert_value("s", "k", {"a": ["$X"]}, env) == {"a": ["1"]}
    assert _parser.convert_value("s", "k", "1.", env) == 1.0
    assert _parser.convert_value("s", "k", "true", env) == "true"  # only the exact spellings convert


def test_dollar_inside_a_secret_is_kept_as_written(fresh_home) -> None:
    os.environ["HARV_DB_PASS"] = "from-env"
    os.environ.pop("word", None)
    fresh_home({"db": {"password": "pa$word$$x"}, "watcher": {"mailPassword": "${HARV_DB_PASS}"},
                "pandacon": {"auth_token": "$HARV_DB_PASS"},
                "credmanager": {"pluginConfigs": '\n  [{"module": "m", "client_secret": "s$cret",'
                                                 '\n    "user": "${HARV_DB_PASS}"}]'}})
    assert harvester_config.db.password == "pa$word$$x"  # no variable, no $$ folding: it is the password
    assert harvester_config.watcher.mailPassword == "from-env"  # a whole-value reference is still expanded
    assert harvester_config.pandacon.auth_token == "from-env"
    plugin_conf = harvester_config.credmanager.pluginConfigs[0]
    assert plugin_conf["client_secret"] == "s$cret" and plugin_conf["user"] == "from-env"
    # a whole-value reference to an unset variable is an error naming the variable, not a value
    os.environ.pop("HARV_DB_PASS")
    harvester_config.reload()
    with pytest.raises(ConfigError, match=r"\[(watcher|pandacon|credmanager)\] \w+ uses .*HARV_DB_PASS"):
        harvester_config.db  # noqa: B018


# ----------------------------------------------------------------------------- access errors

def test_missing_key_message_and_attribute_error_compatibility(fresh_home) -> None:
    home = fresh_home()
    sec = harvester_config.submitter
    with pytest.raises(ConfigKeyError) as info:
        sec.blah  # noqa: B018
    msg = str(info.value)
    assert "[submitter]" in msg and "'blah'" in msg and str(_cfg_path(home)) in msg
    assert "add 'blah = ...' under [submitter]" in msg
    assert isinstance(info.value, AttributeError) and isinstance(info.value, ConfigError)
    assert info.value.section == "submitter" and info.value.key == "blah"
    assert getattr(sec, "blah", 17) == 17
    assert not hasattr(sec, "blah")
    assert hasattr(sec, "nThreads")
    assert "blah" not in sec and "nThreads" in sec
    assert sec.get("blah", 5) == 5 and sec.get("nThreads") == 3
    # dunder probes (copy, pickle) get a plain AttributeError
    with pytest.raises(AttributeError) as info2:
        sec.__deepcopy_probe__  # noqa: B018
    assert not isinstance(info2.value, ConfigKeyError)


def test_missing_section(fresh_home) -> None:
    home = fresh_home()
    with pytest.raises(ConfigKeyError) as info:
        harvester_config.nosuchsection  # noqa: B018
    msg = str(info.value)
    assert "[nosuchsection]" in msg and str(_cfg_path(home)) in msg and "panda_harvester.cfg" in msg
    assert not hasattr(harvester_config, "nosuchsection")
    assert getattr(harvester_config, "nosuchsection", None) is None
    assert hasattr(harvester_config, "master")
    with pytest.raises(ConfigKeyError):
        harvester_config.get_section("nosuchsection")


def test_missing_cfg_file_lists_paths_and_how_to_fix(tmp_path: Path) -> None:
    if Path("/etc/panda/panda_harvester.cfg").exists():
        pytest.skip("this machine has a system-wide cfg in /etc/panda")
    os.environ["PANDA_HOME"] = str(tmp_path)
    os.environ.pop("HARVESTER_CONFIG_FILE", None)
    os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
    assert harvester_config.reload() == []
    assert harvester_config.files_read == []
    with pytest.raises(ConfigError) as info:
        harvester_config.master  # noqa: B018
    msg = str(info.value)
    assert not isinstance(info.value, AttributeError)
    assert str(_cfg_path(tmp_path)) in msg and "/etc/panda/panda_harvester.cfg" in msg
    assert "PANDA_HOME" in msg and "HARVESTER_CONFIG_FILE" in msg
    with pytest.raises(ConfigError):
        harvester_config.config_dict  # noqa: B018
    with pytest.raises(ConfigError):
        harvester_config.dump()
    with pytest.raises(ConfigError):
        harvester_config.ensure_loaded()


def test_explicit_config_file_wins(fresh_home, tmp_path: Path) -> None:
    fresh_home({"master": {"harvester_id": "from-home"}})
    other = harvester_env.write_cfg(tmp_path / "elsewhere", {"master": {"harvester_id": "from-explicit"}})
    os.environ["HARVESTER_CONFIG_FILE"] = str(other)
    harvester_config.reload()
    assert harvester_config.master.harvester_id == "from-explicit"
    assert harvester_config.files_read == [str(other)]
    os.environ["HARVESTER_CONFIG_FILE"] = str(tmp_path / "nope.cfg")
    harvester_config.reload()
    with pytest.raises(ConfigError, match=r"HARVESTER_CONFIG_FILE=.*nope\.cfg"):
        harvester_config.master  # noqa: B018


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.cfg", "[master]\nharvester_id = x\n[master]\nuname = y\n")
    os.environ["HARVESTER_CONFIG_FILE"] = str(path)
    harvester_config.reload()
    with pytest.raises(ConfigError, match="bad.cfg"):
        harvester_config.master  # noqa: B018


@pytest.mark.parametrize("bad_id", ["has space", "x" * 51, "tab\there"])
def test_bad_harvester_id(fresh_home, bad_id: str) -> None:
    fresh_home({"master": {"harvester_id": bad_id}})
    with pytest.raises(ConfigError) as info:
        harvester_config.submitter  # noqa: B018
    assert repr(bad_id) in str(info.value) and "harvester_id" in str(info.value)


def test_harvester_id_of_50_characters_is_fine(fresh_home) -> None:
    fresh_home({"master": {"harvester_id": "h" * 50}})
    assert harvester_config.master.harvester_id == "h" * 50


def test_reserved_section_name_is_refused(fresh_home) -> None:
    fresh_home({"dump": {"x": "1"}})
    with pytest.raises(ConfigError, match="reserved"):
        harvester_config.master  # noqa: B018


# ----------------------------------------------------------------------------- overlays

def test_configmap_overlay(fresh_home) -> None:
    home = fresh_home()
    cm = home / "etc" / "configmap" / "panda_harvester_configmap.json"
    _write(cm, json.dumps({"monitor": {"nThreads": 7, "sleepTime": "42", "fifoEnable": "True"},
                           "newsec": {"flag": "True", "plugins": [{"module": "m"}]}}))
    harvester_config.reload()
    assert harvester_config.monitor.nThreads == 7
    assert harvester_config.monitor.sleepTime == 42
    assert harvester_config.monitor.fifoEnable is True
    assert harvester_config.monitor.maxWorkers == 500  # untouched keys stay
    assert harvester_config.newsec.flag is True and harvester_config.newsec.plugins == [{"module": "m"}]
    assert harvester_config.files_read == [str(_cfg_path(home)), str(cm)]
    _write(cm, "{not json")
    harvester_config.reload()
    with pytest.raises(ConfigError, match="configmap"):
        harvester_config.monitor  # noqa: B018
    _write(cm, json.dumps({"monitor": 3}))
    harvester_config.reload()
    with pytest.raises(ConfigError, match=r"section.*key"):
        harvester_config.monitor  # noqa: B018


INSTANCE_CFG = "[master]\nharvester_id = from-url\n\n[extra]\nlimit = 5\nitems =\n  a\n  b\n"


def test_instance_config_url_file(fresh_home, tmp_path: Path) -> None:
    home = fresh_home()
    remote = _write(tmp_path / "remote" / "instance.cfg", INSTANCE_CFG)
    url = remote.as_uri()
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = url
    harvester_config.reload()
    assert harvester_config.master.harvester_id == "from-url"  # URL overrides the file
    assert harvester_config.master.uname == "root"  # the rest of the file stays
    assert harvester_config.extra.limit == 5 and harvester_config.extra.items == ["a", "b"]
    assert harvester_config.files_read == [str(_cfg_path(home)), url]
    # the URL alone is enough
    os.environ["PANDA_HOME"] = str(tmp_path / "empty_home")
    if not Path("/etc/panda/panda_harvester.cfg").exists():
        harvester_config.reload()
        assert harvester_config.files_read == [url]
        assert harvester_config.extra.limit == 5


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path == "/instance.cfg":
            body = INSTANCE_CFG.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "no such config")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_instance_config_url_http(fresh_home, http_server: str) -> None:
    fresh_home()
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = f"{http_server}/instance.cfg"
    harvester_config.reload()
    assert harvester_config.master.harvester_id == "from-url"
    assert harvester_config.extra.items == ["a", "b"]
    missing = f"{http_server}/missing.cfg"
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = missing
    harvester_config.reload()
    with pytest.raises(ConfigError) as info:
        harvester_config.master  # noqa: B018
    assert missing in str(info.value) and "404" in str(info.value)


def test_instance_config_url_unreachable_or_unsupported(fresh_home) -> None:
    fresh_home()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.cfg"  # nothing listens there any more
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = url
    harvester_config.reload()
    with pytest.raises(ConfigError, match=url.replace(".", r"\.")):
        harvester_config.master  # noqa: B018
    os.environ["HARVESTER_INSTANCE_CONFIG_URL"] = "ftp://example.org/x.cfg"
    harvester_config.reload()
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        harvester_config.master  # noqa: B018


# ----------------------------------------------------------------------------- masking

def test_secret_keys() -> None:
    for key in ("password", "mailPassword", "passphraseEnv", "secretFile", "auth_token", "apiKey", "Token"):
        assert is_secret_key(key), key
    for key in ("key_file", "cert_file", "ca_cert", "nThreads", "mainKey"):
        assert not is_secret_key(key), key


def test_secrets_are_masked_in_config_dict_dump_and_repr(fresh_home) -> None:
    fresh_home({"db": {"password": "s3cr3t-db"}, "watcher": {"mailPassword": "s3cr3t-mail"},
                "pandacon": {"auth_token": "s3cr3t-token", "key_file": "/k/userkey.pem"},
                "extra": {"numericSecret": "123456", "bigPassphrase": "\n  s3cr3t-a\n  s3cr3t-b"}})
    cd = harvester_config.config_dict
    assert cd["db"]["password"] == MASK and cd["watcher"]["mailPassword"] == MASK
    assert cd["pandacon"]["auth_token"] == MASK and cd["extra"]["numericSecret"] == MASK
    assert cd["pandacon"]["key_file"] == "/k/userkey.pem"
    assert cd["db"]["user"] == "harvester" and cd["monitor"]["nThreads"] == 3
    assert cd["frontend"]["verifyToken"] is True  # booleans tell nothing secret
    cd["db"]["user"] = "changed"  # a copy: the loaded config is untouched
    assert harvester_config.db.user == "harvester"
    text = harvester_config.dump()
    for shown in (text, repr(harvester_config.db), repr(harvester_config.watcher), repr(harvester_config.extra),
                  str(harvester_config.config_dict)):
        assert "s3cr3t" not in shown and "123456" not in shown
    assert "password = ********" in text and "key_file = /k/userkey.pem" in text
    assert "[monitor]" in text and "nThreads = 3" in text
    # the real values are still there for the code that needs them
    assert harvester_config.db.password == "s3cr3t-db"
    assert harvester_config.extra.numericSecret == 123456


def test_secrets_inside_json_values_are_masked(fresh_home) -> None:
    fresh_home({"credmanager": {"pluginConfigs": '\n  [{"module": "m", "name": "N", "configs": {"atlas": '
                                                 '{"client_secret": "s3cr3t-oidc", "token_file": "/t",'
                                                 ' "keys": {"api_key": "s3cr3t-key"}}}}]'}})
    shown = harvester_config.config_dict["credmanager"]["pluginConfigs"][0]
    assert shown["configs"]["atlas"]["client_secret"] == MASK and shown["configs"]["atlas"]["keys"]["api_key"] == MASK
    assert shown["module"] == "m" and shown["configs"]["atlas"]["token_file"] == MASK  # "token" in the name
    for text in (harvester_config.dump(), repr(harvester_config.credmanager), str(harvester_config.config_dict)):
        assert "s3cr3t" not in text
    real = harvester_config.credmanager.pluginConfigs[0]["configs"]["atlas"]
    assert real["client_secret"] == "s3cr3t-oidc" and real["keys"]["api_key"] == "s3cr3t-key"


def test_dump_writes_to_stream_and_round_trips(fresh_home, tmp_path: Path) -> None:
    import io

    fresh_home({"extra": {"items": "\n  a\n  b", "js": '\n  {"k": [1]}', "none": "None", "empty": ""}})
    buf = io.StringIO()
    text = harvester_config.dump(buf)
    assert buf.getvalue() == text and text.startswith("# read from: ")
    copy = _write(tmp_path / "dumped.cfg", text)
    os.environ["HARVESTER_CONFIG_FILE"] = str(copy)
    harvester_config.reload()
    assert harvester_config.extra.items == ["a", "b"] and harvester_config.extra.js == {"k": [1]}
    assert harvester_config.extra.none is None and harvester_config.extra.empty == ""
    assert harvester_config.monitor.nThreads == 3


# ----------------------------------------------------------------------------- section API, reload

def test_section_helpers(fresh_home) -> None:
    fresh_home()
    sec = harvester_config.zipper
    assert isinstance(sec, ConfigSection)
    assert list(sec) == sec.keys() and "maxJobsToZip" in list(sec)
    assert len(sec) == len(sec.to_dict()) == len(vars(sec))
    assert sec.to_dict()["nThreadsForZip"] == 4 and dict(sec.items()) == vars(sec)
    assert harvester_config.get_section("zipper") is sec
    assert "zipper" in harvester_config.sections() and "zipper" in dir(harvester_config)
    assert harvester_config.ensure_loaded() == harvester_config.files_read


def test_reload_rereads_and_replaces_sections(fresh_home) -> None:
    home = fresh_home({"monitor": {"nThreads": "2"}})
    old = harvester_config.monitor
    assert old.nThreads == 2
    harvester_env.write_cfg(home, {"monitor": {"nThreads": "9"}})
    assert harvester_config.monitor.nThreads == 2  # no re-read without reload
    assert harvester_config.reload() == [str(_cfg_path(home))]
    assert harvester_config.monitor.nThreads == 9
    assert harvester_config.monitor is not old and old.nThreads == 2


def test_concurrent_first_access_loads_once(fresh_home, monkeypatch) -> None:
    fresh_home()
    calls = []
    real_load = _parser.load_with_origins

    def counting_load(env):
        calls.append(1)
        return real_load(env)

    monkeypatch.setattr(_parser, "load_with_origins", counting_load)
    monkeypatch.setattr(harvester_config, "_state", None)
    results = []
    threads = [threading.Thread(target=lambda: results.append(harvester_config.monitor.nThreads)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [3] * 8 and len(calls) == 1
