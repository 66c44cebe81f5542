"""etc/panda_harvester.cfg.rpmnew: complete, loadable, and holding every key the code reads.

Also checks the service templates under templates/.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

import harvester_env
from pandaharvester.harvesterconfig import harvester_config

REPO = harvester_env.REPO
TEMPLATE = REPO / "etc" / "panda_harvester.cfg.rpmnew"
PACKAGE = REPO / "pandaharvester"

# every section of the original's cfg (and of ours)
SECTIONS = [
    "master", "db", "fifo", "communicator", "pandacon", "qconf", "commandmanager", "jobfetcher", "propagator",
    "preparator", "submitter", "monitor", "credmanager", "stager", "zipper", "eventfeeder", "cacher",
    "payload_interaction", "frontend", "sweeper", "watcher", "apfmon", "service_monitor", "googlecloud",
    "file_syncer", "log_level",
]

# keys the original reads, per section (active or commented in the template)
ORIGINAL_KEYS = {
    "master": "uname gname loggername harvester_id debugger_port dynamic_plugin_change",
    "db": "verbose useInspect nConnections engine database_filename useMySQLdb user password schema host port "
          "reconnectTimeout syncMaxWorkerID",
    "fifo": "fifoModule fifoClass database_filename",
    "communicator": "moduleName className nConnections",
    "pandacon": "timeout auth_type ca_cert cert_file key_file auth_token auth_origin pandaURL pandaURLSSL "
                "pandaCacheURL_W pandaCacheURL_R server_api_url server_api_url_ssl cache_api_url_ssl verbose "
                "useInspect getEventsChunkSize multihost_auth_config iddsURL",
    "qconf": "configFile configFromCacher queueList resolverModule resolverClass resolverConfig autoBlacklist "
             "pilotVersion updateInterval checkInterval defaultTemplateQueueName",
    "commandmanager": "commands_bulk_size sleepTime",
    "jobfetcher": "nThreads nQueues maxJobs lookupTime sleepTime",
    "propagator": "nThreads maxJobs nJobsInBulk maxWorkers nWorkersInBulk maxDialogs minMessageLevel lockInterval "
                  "updateInterval sleepTime",
    "preparator": "nThreads maxJobsToCheck maxJobsToTrigger maxFilesPerJobToCheck maxFilesPerJobToPrepare "
                  "lockInterval checkInterval triggerInterval sleepTime",
    "submitter": "nThreads nQueues lookupTime queueLockInterval lockInterval checkInterval minSubmissionInterval "
                 "sleepTime maxNewWorkers respectSleepTime activateWorkerFactor noPilotsWhenNoActiveJobs",
    "monitor": "nThreads maxWorkers lockInterval checkInterval checkTimeout sleepTime fifoEnable fifoSleepTimeMilli "
               "fifoCheckInterval fifoCheckDuration fifoForceEnqueueInterval fifoMaxWorkersToPopulate "
               "fifoMaxWorkersPerChunk fifoMaxPreemptInterval fifoProtectiveDequeue pluginCacheEnable "
               "pluginCacheRefreshInterval workerQueueTimeLimit eventBasedEnable eventBasedPlugins "
               "eventBasedCheckInterval eventBasedTimeWindow eventBasedCheckMaxEvents eventBasedEventLifetime "
               "eventBasedRemoveMaxEvents postProcessTimeout",
    "credmanager": "moduleName className inCertFile outCertFile voms pluginConfigs sleepTime",
    "stager": "nThreads maxJobsToCheck maxJobsToTrigger maxJobsToZip maxFilesPerJobToCheck maxFilesPerJobToTrigger "
              "maxFilesPerJobToZip usePostZipping lockInterval checkInterval triggerInterval zipInterval "
              "nThreadsForZip sleepTime",
    "zipper": "maxJobsToZip maxFilesPerJobToZip usePostZipping lockInterval zipInterval nThreadsForZip",
    "eventfeeder": "nThreads maxWorkers lockInterval sleepTime",
    "cacher": "data refreshInterval sleepTime",
    "payload_interaction": "workerAttributesFile jobReportFile eventStatusDumpJsonFile eventStatusDumpXmlFile "
                           "jobRequestFile jobSpecFile eventRequestFile eventRangesFile updateEventsFile "
                           "xmlPoolCatalogFile pandaIDsFile killWorkerFile heartbeatFile",
    "frontend": "portNumber nThreads verbose type authEnable secretFile verifyToken",
    "sweeper": "nThreads maxWorkers checkInterval sleepTime keepFinished keepFailed keepCancelled keepMissed "
               "keepPending diskCleanUpInterval diskHighWatermark",
    "watcher": "logFileNameList maxStalled nMessages maxDuration checkInterval sleepTime actions passphraseEnv "
               "mailServer mailPort mailUseSSL mailUser mailPassword mailFrom mailTo",
    "apfmon": "active base_url worker_timeout",
    "service_monitor": "active sleepTime disk_volumes pidfile",
    "googlecloud": "zone project service_account_file user_data_file image harvester_frontend",
    "file_syncer": "sleepTime pluginConfigs",
}

# keys our design adds
OUR_KEYS = {
    "master": ["logDir"],
    "db": ["busyTimeout"],
    "pandacon": ["transport", "nConnections", "maxRetries", "retryBackoff"],
}

# only these may hold a FIXME: every site must set them
FIXME_KEYS = {("master", "uname"), ("master", "gname"), ("master", "harvester_id"), ("db", "database_filename"),
              ("db", "password"), ("credmanager", "inCertFile"), ("credmanager", "outCertFile")}

# module-level names of harvester_config that are not sections
API_NAMES = {"reload", "dump", "sections", "get_section", "ensure_loaded", "files_read", "config_dict",
             "ConfigSection"}
# ConfigSection methods: never cfg keys
SECTION_METHODS = {"get", "keys", "items", "to_dict"}


def _template_parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(TEMPLATE, encoding="utf-8")
    return parser


def _commented_keys() -> dict[str, set[str]]:
    """Keys shown commented out (``#key = value``) in each section of the template."""
    found: dict[str, set[str]] = defaultdict(set)
    section = None
    for line in TEMPLATE.read_text().splitlines():
        head = re.match(r"\[(\w+)\]\s*$", line)
        if head:
            section = head.group(1)
            continue
        key = re.match(r"#\s*(\w+)\s*=", line)
        if key and section:
            found[section].add(key.group(1))
    return found


def _documented(parser: configparser.ConfigParser, commented: dict[str, set[str]], section: str, key: str,
                optional: bool) -> bool:
    if parser.has_option(section, key):
        return True
    return optional and key in commented.get(section, set())


# ----------------------------------------------------------------------------- code scan

class _ConfigReads(ast.NodeVisitor):
    """Collects ``(section, key)`` reads of harvester_config in one module.

    Understands ``harvester_config.S.K``, ``getattr(harvester_config.S, "K"[, default])``,
    ``hasattr(harvester_config.S, "K")``, ``harvester_config.S.get("K", default)``, the same on
    ``getattr(harvester_config, "S"[, default])``, aliases ``x = harvester_config.S``, helper
    calls ``helper(<section>, "K", ...)`` and ``_cfg("S", "K", default)``, and the agents'
    ``self.cfg("K", default)`` in a class with ``cfg_section = "S"`` (which also reads
    ``sleepTime``). ``key`` is None for a bare section access. ``optional`` marks reads with
    a fallback (helpers are assumed to have one).
    """

    def __init__(self, module_names: set[str], aliases: dict[str, str]):
        self.module_names = module_names
        self.aliases = aliases
        self.reads: list[tuple[str, str | None, bool, int]] = []
        self.agent_sections: list[str | None] = []

    def section_of(self, node: ast.AST) -> tuple[str | None, bool]:
        """Section named by an expression, and whether it was reached with a fallback."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in self.module_names and node.attr not in API_NAMES:
            return node.attr, False
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and \
                len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in self.module_names \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            return node.args[1].value, len(node.args) == 3
        try:
            text = ast.unparse(node)
        except Exception:  # pragma: no cover - defensive
            return None, False
        if text in self.aliases:
            return self.aliases[text], False
        return None, False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        section, _ = self.section_of(node.value)
        if section is not None and node.attr not in SECTION_METHODS and not node.attr.startswith("__"):
            self.reads.append((section, node.attr, False, node.lineno))
        elif isinstance(node.value, ast.Name) and node.value.id in self.module_names and node.attr not in API_NAMES:
            self.reads.append((node.attr, None, False, node.lineno))
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        section = None
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "cfg_section"
                                                    for t in stmt.targets):
                if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    section = stmt.value.value
                    self.reads.append((section, "sleepTime", True, stmt.lineno))
        self.agent_sections.append(section)
        self.generic_visit(node)
        self.agent_sections.pop()

    @staticmethod
    def _str_arg(node: ast.Call, index: int) -> str | None:
        if len(node.args) > index and isinstance(node.args[index], ast.Constant) and \
                isinstance(node.args[index].value, str):
            return node.args[index].value
        return None

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        agent_section = self.agent_sections[-1] if self.agent_sections else None
        if agent_section and isinstance(func, ast.Attribute) and func.attr == "cfg" and \
                isinstance(func.value, ast.Name) and func.value.id == "self" and self._str_arg(node, 0):
            self.reads.append((agent_section, self._str_arg(node, 0), True, node.lineno))
        if isinstance(func, ast.Name) and func.id == "_cfg" and self._str_arg(node, 0) and self._str_arg(node, 1):
            self.reads.append((self._str_arg(node, 0), self._str_arg(node, 1), True, node.lineno))
        name = self._str_arg(node, 1)
        if node.args and name is not None:
            target = node.args[0]
            optional = not (isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) == 2)
            section, _ = self.section_of(target)
            if section is not None:
                self.reads.append((section, name, optional, node.lineno))
                for arg in node.args[2:]:
                    self.visit(arg)
                return
            if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and isinstance(target, ast.Name) \
                    and target.id in self.module_names and name not in API_NAMES:
                self.reads.append((name, None, optional, node.lineno))
                for arg in node.args[2:]:
                    self.visit(arg)
                return
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            section, _ = self.section_of(func.value)
            if section is not None:
                self.reads.append((section, node.args[0].value, True, node.lineno))
        self.generic_visit(node)


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pandaharvester.harvesterconfig":
            names.update(alias.asname or alias.name for alias in node.names if alias.name == "harvester_config")
        elif isinstance(node, ast.Import):
            names.update(alias.asname for alias in node.names
                         if alias.name == "pandaharvester.harvesterconfig.harvester_config" and alias.asname)
    return names


def _aliases(tree: ast.Module, module_names: set[str]) -> dict[str, str]:
    """``x = harvester_config.S`` bindings whose name is never bound to anything else."""
    probe = _ConfigReads(module_names, {})
    bound: dict[str, set[str | None]] = defaultdict(set)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            section, _ = probe.section_of(node.value)
            for target in targets:
                if isinstance(target, (ast.Name, ast.Attribute)):
                    bound[ast.unparse(target)].add(section)
    return {name: next(iter(s)) for name, s in bound.items() if len(s) == 1 and None not in s}


def scan_config_reads(root: Path = PACKAGE) -> dict[tuple[str, str | None], dict]:
    """All cfg reads in ``root``: ``{(section, key): {"optional": bool, "where": [file:line]}}``."""
    found: dict[tuple[str, str | None], dict] = {}
    for path in sorted(root.rglob("*.py")):
        if "harvesterconfig" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue  # another test reports broken modules
        names = _module_names(tree)
        if not names:
            continue
        visitor = _ConfigReads(names, _aliases(tree, names))
        visitor.visit(tree)
        for section, key, optional, line in visitor.reads:
            entry = found.setdefault((section, key), {"optional": True, "where": []})
            entry["optional"] = entry["optional"] and optional
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            entry["where"].append(f"{shown}:{line}")
    return found


# ----------------------------------------------------------------------------- tests

def test_template_parses_strictly() -> None:
    parser = _template_parser()
    assert parser.sections() == SECTIONS


def test_template_has_every_original_and_design_key() -> None:
    parser = _template_parser()
    commented = _commented_keys()
    missing = [f"[{s}] {k}" for s, keys in ORIGINAL_KEYS.items() for k in keys.split()
               if not _documented(parser, commented, s, k, optional=True)]
    missing += [f"[{s}] {k}" for s, keys in OUR_KEYS.items() for k in keys if not parser.has_option(s, k)]
    assert not missing, f"keys missing from {TEMPLATE.name}: {missing}"


def test_fixme_only_where_a_site_must_choose() -> None:
    parser = _template_parser()
    fixme = {(s, k) for s in parser.sections() for k, v in parser.items(s, raw=True) if "FIXME" in v}
    assert fixme == FIXME_KEYS


def test_template_loads_as_is() -> None:
    saved = dict(os.environ)
    try:
        os.environ["HARVESTER_CONFIG_FILE"] = str(TEMPLATE)
        os.environ.pop("HARVESTER_INSTANCE_CONFIG_URL", None)
        harvester_config.reload()
        assert harvester_config.sections() == SECTIONS
        assert harvester_config.files_read[0] == str(TEMPLATE)
        assert harvester_config.fifo.database_filename == "/dev/shm/$(TITLE)_fifo.db"
        assert harvester_config.qconf.queueList == ["ALL"]
        assert harvester_config.master.logDir == "/var/log/harvester"
        assert harvester_config.pandacon.transport in ("requests", "pycurl")
        assert isinstance(harvester_config.db.busyTimeout, int)
        lists = [harvester_config.credmanager.moduleName, harvester_config.credmanager.className,
                 harvester_config.credmanager.inCertFile, harvester_config.credmanager.outCertFile,
                 harvester_config.credmanager.voms]
        assert all(isinstance(v, list) for v in lists) and len({len(v) for v in lists}) == 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
        harvester_config.reload()


def test_test_instance_is_offline_safe() -> None:
    """The session cfg (template + test overrides) must not make a daemon call the internet."""
    for entry in harvester_config.cacher.data:
        assert entry.split("|")[2].startswith("panda_server:"), entry
    assert harvester_config.apfmon.active is False
    assert harvester_config.master.harvester_id == "test-harvester"


def test_scanner_finds_the_patterns(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text(
        "from pandaharvester.harvesterconfig import harvester_config\n"
        "from pandaharvester.harvesterconfig import harvester_config as hc\n"
        "a = harvester_config.monitor.nThreads\n"
        "b = getattr(harvester_config.submitter, 'lateKey', 3)\n"
        "c = hasattr(harvester_config.db, 'checkedKey')\n"
        "cfg = harvester_config.sweeper\n"
        "d = cfg.keepFinished + getattr(cfg, 'optKey', 1) + cfg.get('getKey', 2)\n"
        "e = getattr(getattr(harvester_config, 'master', None), 'flag', True)\n"
        "f = hc.zipper.maxJobsToZip\n"
        "g = hasattr(harvester_config, 'someSection')\n"
        "harvester_config.reload()\n"
        "h = getattr(harvester_config.db, 'strictKey')\n"
        "i = _opt_str(harvester_config.db, 'helperKey')\n"
        "j = _cfg('master', 'wrappedKey', 1)\n"
        "class Agent:\n"
        "    cfg_section = 'agentsec'\n"
        "    def f(self):\n"
        "        return self.cfg('agentKey', 2)\n"
    )
    reads = scan_config_reads(tmp_path)
    expected = {
        ("monitor", "nThreads"): False, ("submitter", "lateKey"): True, ("db", "checkedKey"): True,
        ("sweeper", "keepFinished"): False, ("sweeper", "optKey"): True, ("sweeper", "getKey"): True,
        ("master", "flag"): True, ("zipper", "maxJobsToZip"): False, ("someSection", None): True,
        ("db", "strictKey"): False, ("db", "helperKey"): True, ("master", "wrappedKey"): True,
        ("agentsec", "agentKey"): True, ("agentsec", "sleepTime"): True,
    }
    got = {k: v["optional"] for k, v in reads.items() if k[1] is not None or k[0] == "someSection"}
    assert got == expected
    assert ("reload", None) not in reads


def test_every_key_the_code_reads_is_in_the_template() -> None:
    parser = _template_parser()
    commented = _commented_keys()
    problems = []
    for (section, key), info in sorted(scan_config_reads().items(), key=lambda item: (item[0][0], item[0][1] or "")):
        where = ", ".join(info["where"][:3])
        if key is None:
            if not parser.has_section(section) and not info["optional"]:
                problems.append(f"[{section}] (section) read at {where}")
            continue
        if not parser.has_section(section):
            problems.append(f"[{section}] {key} read at {where}: no such section")
        elif not _documented(parser, commented, section, key, info["optional"]):
            how = "add it" if info["optional"] else "add it as an active key (the code reads it without default)"
            problems.append(f"[{section}] {key} read at {where}: {how}")
    assert not problems, "template etc/panda_harvester.cfg.rpmnew lacks:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------- service templates

TEMPLATES = REPO / "templates"


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(TEMPLATES / "systemd" / "panda_harvester.service")
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert "pandaharvester.harvesterbody.master" in service["ExecStart"]
    assert "--foreground" in service["ExecStart"] and "--pid" in service["ExecStart"]
    assert service["Type"] == "simple"
    assert "sysconfig/panda_harvester" in service["EnvironmentFile"]
    assert "HUP" in service["ExecReload"]


def test_logrotate_reopens_with_sighup() -> None:
    text = (TEMPLATES / "logrotate.d" / "panda_harvester").read_text()
    assert "copytruncate" not in text
    assert re.search(r"postrotate\s.*kill\s+-HUP", text, re.S) and "endscript" in text
    assert "/var/log/harvester/" in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sysconfig_is_valid_shell_and_exports(tmp_path: Path) -> None:
    path = TEMPLATES / "sysconfig" / "panda_harvester"
    out = subprocess.run(["bash", "-c", f"set -a; . '{path}'; env"], capture_output=True, text=True, timeout=10,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert out.returncode == 0, out.stderr
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert env["TZ"] == "UTC" and env["PANDA_HOME"] and "PYTHONPATH" in env
