"""etc/panda_harvester.cfg.rpmnew: complete, loadable, and holding every key the code reads.

The template, the cfg key table (``harvesterconfig/cfg_keys.py``) and the code agree: every
template key is in the table, a key is marked ``# not read by this Harvester`` in the template
exactly when the table says it is not implemented, an unmarked key is read by the code and a
marked one is read nowhere. Also checks the service templates under templates/.
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
from pandaharvester.harvesterconfig import harvester_config, schema

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
API_NAMES = {"reload", "dump", "sections", "get_section", "ensure_loaded", "origin_of", "files_read", "config_dict",
             "ConfigSection"}
UNREAD_MARKER = "# not read by this Harvester"
# helpers that read a key by name: cfg_value(section, key[, default]) and the master's _cfg(section, key, default)
READ_HELPERS = {"cfg_value", "_cfg"}
# ConfigSection methods: never cfg keys
SECTION_METHODS = {"get", "keys", "items", "to_dict"}


def _template_parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(TEMPLATE, encoding="utf-8")
    return parser


def _commented_keys() -> dict[str, set[str]]:
    """Keys shown commented out (``#key = value``, no space after ``#``) in each section of the template."""
    found: dict[str, set[str]] = defaultdict(set)
    for (section, key), entry in _template_keys().items():
        if entry["commented"]:
            found[section].add(key)
    return found


def _template_keys() -> dict[tuple[str, str], dict]:
    """Every key of the template, active or commented: ``{(section, key): {"commented", "marked", "line"}}``.

    A key is marked when an ``UNREAD_MARKER`` comment is in its paragraph (lines between blank
    lines), or in the paragraph of its ``[section]`` line (the whole section is then marked).
    """
    keys: dict[tuple[str, str], dict] = {}
    section, section_marked = None, False
    paragraph: list[tuple[str, bool, int]] = []
    para_marked = para_has_header = False

    def flush() -> None:
        nonlocal paragraph, para_marked, para_has_header, section_marked
        if para_has_header and para_marked:
            section_marked = True
        for key, commented, number in paragraph:
            keys[(section, key)] = {"commented": commented, "marked": para_marked or section_marked, "line": number}
        paragraph, para_marked, para_has_header = [], False, False

    for number, line in enumerate(TEMPLATE.read_text().splitlines(), 1):
        if not line.strip():
            flush()
            continue
        head = re.match(r"\[(\w+)\]\s*$", line)
        if head:
            flush()
            section, section_marked, para_has_header = head.group(1), False, True
            continue
        if line.startswith(UNREAD_MARKER):
            para_marked = True
        active = re.match(r"(\w+)\s*=", line)
        commented = re.match(r"#(\w+)\s*=", line)
        if section and (active or commented):
            paragraph.append(((active or commented).group(1), commented is not None, number))
    flush()
    return keys


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
        helper = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if helper in READ_HELPERS and self._str_arg(node, 0) and self._str_arg(node, 1):
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
        text = path.read_text(encoding="utf-8")
        marks = ("pandaharvester.harvesterconfig", "cfg_section", *(f"{helper}(" for helper in READ_HELPERS))
        if not names and not any(mark in text for mark in marks):
            continue  # neither harvester_config, a read helper (cfg_value, _cfg) nor an agent's self.cfg()
        visitor = _ConfigReads(names, _aliases(tree, names))
        visitor.visit(tree)
        for section, key, optional, line in visitor.reads:
            entry = found.setdefault((section, key), {"optional": True, "where": []})
            entry["optional"] = entry["optional"] and optional
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            entry["where"].append(f"{shown}:{line}")
    return found


class _Mentions(ast.NodeVisitor):
    """Names one module mentions (string constants, attribute names) and whether it names cfg
    sections at run time (``getattr(harvester_config, <expr>)``, ``cfg_value(<expr>, ...)``)."""

    def __init__(self, module_names: set[str]):
        self.module_names = module_names
        self.names: set[str] = set()
        self.dynamic = False

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.names.add(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.names.add(node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        first, second = (node.args + [None, None])[:2]
        if name == "getattr" and isinstance(first, ast.Name) and first.id in self.module_names and \
                not isinstance(second, ast.Constant):
            self.dynamic = True
        if name in READ_HELPERS and first is not None and not isinstance(first, ast.Constant):
            self.dynamic = True
        self.generic_visit(node)


def _module_mentions(root: Path = PACKAGE) -> dict[str, _Mentions]:
    """``{module path: _Mentions}`` of every module outside harvesterconfig."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        if "harvesterconfig" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        visitor = _Mentions(_module_names(tree))
        visitor.visit(tree)
        found[str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)] = visitor
    return found


def _read_where(section: str, key: str, reads: dict, mentions: dict[str, _Mentions]) -> list[str]:
    """Where the code may read ``[section] key``: the scanner's hits, else the modules that read
    ``[section]`` (or name sections at run time and mention it) and mention ``key``."""
    if (section, key) in reads:
        return reads[(section, key)]["where"]
    readers = {where.rsplit(":", 1)[0] for (s, _k), info in reads.items() if s == section for where in info["where"]}
    return sorted(path for path, m in mentions.items()
                  if key in m.names and (path in readers or (m.dynamic and section in m.names)))


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
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "78"  # 78: bad cfg
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


# ----------------------------------------------------------------------------- the key table

def test_template_keys_and_the_key_table_are_the_same_keys() -> None:
    keys = _template_keys()
    table = schema.table()
    not_in_table = [f"[{s}] {k} (line {e['line']})" for (s, k), e in keys.items() if table.get(s, k) is None]
    assert not not_in_table, f"template keys missing from harvesterconfig/cfg_keys.py: {not_in_table}"
    not_in_template = [f"[{k.section}] {k.name}" for k in table.keys
                       if k.name != schema.ANY_KEY and (k.section, k.name) not in keys]
    assert not not_in_template, f"cfg_keys.py keys missing from {TEMPLATE.name}: {not_in_template}"


def test_unread_marker_is_where_the_table_says_not_implemented() -> None:
    table = schema.table()
    wrong = [f"[{s}] {k} (line {e['line']}): " + ("marked but the table says implemented" if e["marked"] else
                                                  f"not implemented: add a '{UNREAD_MARKER}: <why>' line")
             for (s, k), e in _template_keys().items() if e["marked"] == table.get(s, k).implemented]
    assert not wrong, "\n".join(wrong)


def test_unmarked_template_keys_are_read_and_marked_ones_are_not() -> None:
    reads = scan_config_reads()
    mentions = _module_mentions()
    wrong = []
    for (section, key), entry in sorted(_template_keys().items()):
        where = _read_where(section, key, reads, mentions)
        if entry["marked"] and where:
            wrong.append(f"[{section}] {key} is marked '{UNREAD_MARKER}' but may be read at {where[:3]}")
        elif not entry["marked"] and not where and section != "log_level":
            wrong.append(f"[{section}] {key} is read nowhere: mark it '{UNREAD_MARKER}: <why>' "
                         f"(and implemented=False in cfg_keys.py)")
    assert not wrong, "\n".join(wrong)


def test_every_key_the_code_reads_is_an_implemented_key_of_the_table() -> None:
    table = schema.table()
    wrong = []
    for (section, key), info in sorted(scan_config_reads().items(), key=lambda item: (item[0][0], item[0][1] or "")):
        entry = table.get(section, key) if key is not None else None
        if key is not None and section in table.sections and (entry is None or not entry.implemented):
            what = "is not in" if entry is None else "is marked not implemented in"
            wrong.append(f"[{section}] {key} read at {', '.join(info['where'][:2])} {what} cfg_keys.py")
    assert not wrong, "\n".join(wrong)


def test_mentions_scan_sees_dynamic_section_reads(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "dyn.py").write_text(
        "from pandaharvester.harvesterconfig import harvester_config\n"
        "SECTIONS = ('monitor', 'sweeper')\n"
        "def n(section):\n"
        "    return getattr(getattr(harvester_config, section), 'nThreads', 1)\n")
    (pkg / "static.py").write_text(
        "from pandaharvester.harvesterconfig import harvester_config\n"
        "def f():\n"
        "    section = getattr(harvester_config, 'qconf', None)\n"
        "    def get(key):\n"
        "        return getattr(section, key, None)\n"
        "    return get('pilotVersion')\n")
    reads, mentions = scan_config_reads(tmp_path), _module_mentions(tmp_path)
    assert _read_where("monitor", "nThreads", reads, mentions)
    assert _read_where("qconf", "pilotVersion", reads, mentions)
    assert not _read_where("zipper", "nThreads", reads, mentions)  # never named as a section
    assert not _read_where("qconf", "configURL", reads, mentions)  # never mentioned
