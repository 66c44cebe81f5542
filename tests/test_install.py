"""``pip install .`` into a fresh venv gives a working package (long: run with --runslow).

The installed copy, used from outside the source tree, must load the original's and our
pickles, read the shipped cfg template, load every shipped queue-config example and build the
dummy plugins. Needs the package index pip is configured with (the dependencies are installed).
"""

from __future__ import annotations

import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

import harvester_env

REPO = harvester_env.REPO
ORIGINAL_PICKLES = harvester_env.SHARED / "reference" / "original-pickles"

SMOKE = textwrap.dedent('''
    import glob, importlib.util, json, os, pickle, sys
    import pandaharvester
    assert pandaharvester.__file__.startswith(sys.prefix), pandaharvester.__file__
    originals, examples = sys.argv[1], sys.argv[2]
    for name in ("jobspec.pickle", "workspec.pickle"):
        with open(os.path.join(originals, name), "rb") as f:
            obj = pickle.load(f, encoding="latin1")
        assert not obj.has_updated_attributes()
        with open(os.path.join(examples, name), "rb") as f:
            ours = pickle.load(f)
        assert type(ours) is type(obj), (type(ours), type(obj))
    etc = os.path.join(sys.prefix, "etc", "panda")
    os.environ["HARVESTER_CONFIG_FILE"] = os.path.join(etc, "panda_harvester.cfg.rpmnew")
    from pandaharvester.harvesterconfig import harvester_config
    assert harvester_config.monitor.nThreads == 3
    assert harvester_config.config_dict["db"]["password"] == "********"
    from pandaharvester.harvestercore.queue_config_loader import QueueConfigSettings
    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper
    loaded = {}
    for path in sorted(glob.glob(os.path.join(etc, "panda_queueconfig_*.json"))):
        mapper = QueueConfigMapper(update_db=False, id=path, check_plugins=False,
                                   settings=QueueConfigSettings(config_file=path))
        assert mapper.get_all_queues() and mapper.errors == [], [str(e) for e in mapper.errors]
        checked = QueueConfigMapper(update_db=False, id=path + "+check", settings=QueueConfigSettings(config_file=path))
        checked.load_data()
        assert all("cannot be imported" in str(e) for e in checked.errors), [str(e) for e in checked.errors]
        loaded[os.path.basename(path)] = sorted(checked.get_all_queues())
    assert len(loaded["panda_queueconfig_local.json"]) == 3, loaded
    from pandaharvester.harvestercore.plugin_factory import PluginFactory
    factory = PluginFactory(no_db=True)
    for module, name in (("harvestersubmitter.dummy_submitter", "DummySubmitter"),
                         ("harvestermonitor.dummy_monitor", "DummyMonitor"),
                         ("harvestersweeper.dummy_sweeper", "DummySweeper"),
                         ("harvesterpreparator.dummy_preparator", "DummyPreparator"),
                         ("harvesterstager.dummy_stager", "DummyStager"),
                         ("harvestermessenger.shared_file_messenger", "SharedFileMessenger"),
                         ("harvesterworkermaker.simple_worker_maker", "SimpleWorkerMaker"),
                         ("harvesterthrottler.simple_throttler", "SimpleThrottler"),
                         ("harvestercredmanager.dummy_cred_manager", "DummyCredManager")):
        plugin = factory.get_plugin({"module": "pandaharvester." + module, "name": name, "queueName": "Q"})
        assert type(plugin).__name__ == name and plugin.queueName == "Q"
    print("OK", json.dumps(loaded, sort_keys=True))
''')


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_works(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], capture_output=True,
                             text=True, timeout=600, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    for script in ("panda_harvester", "harvester-admin", "pandaharvester-emulator"):
        assert (env_dir / "bin" / script).is_file(), script
    smoke = tmp_path / "smoke.py"
    smoke.write_text(SMOKE)
    run = subprocess.run([str(python), str(smoke), str(ORIGINAL_PICKLES), str(REPO / "examples")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("OK"), run.stdout
