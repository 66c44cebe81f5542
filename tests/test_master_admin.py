"""harvester-admin skeleton: get/test sub-commands and argument errors."""

from __future__ import annotations

import json

import pytest

from pandaharvester import panda_pkg_info
from pandaharvester.harvesterscripts import harvester_admin


def test_get_version_and_id(capsys):
    assert harvester_admin.main(["get", "version"]) == 0
    assert capsys.readouterr().out.strip() == panda_pkg_info.release_version
    assert harvester_admin.main(["get", "harvesterID"]) == 0
    assert capsys.readouterr().out.strip() == "test-harvester"


def test_get_config_is_json_without_secrets(capsys, fresh_home):
    fresh_home({"db": {"password": "s3cret-value"}})
    assert harvester_admin.main(["get", "harvester_config"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["master"]["harvester_id"] == "test-harvester"
    assert "s3cret-value" not in out


def test_test_command_and_bad_arguments(capsys):
    assert harvester_admin.main(["test"]) == 0
    assert "test CLI" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        harvester_admin.main(["get", "nothing"])
    assert exc.value.code == 2
