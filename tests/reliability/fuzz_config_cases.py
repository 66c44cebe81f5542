"""Cases for the bad-input fuzzer (``test_fuzz_config.py``): a valid cfg / queue config and the
hypothesis strategies that break them one way at a time.

A :class:`Case` is the bytes to write plus what was broken (``section``/``queue`` and ``key``),
so that the test can say which names the one error line must carry.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pandaharvester.harvesterconfig import schema
from pandaharvester.harvestercore.queue_config import MANDATORY_PLUGINS, PLUGIN_ROLES, QUEUE_LIMIT_ATTRS

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


class Case:
    """One fuzzed input: ``data`` to write, and what the mutation touched (``section``: the cfg
    section or the queue name; ``typo_of``: the known name a typo came from)."""

    def __init__(self, kind: str, data: bytes, section: str | None = None, key: str | None = None,
                 value: Any = None, typo_of: str | None = None) -> None:
        self.kind, self.data, self.section, self.key, self.value, self.typo_of = (
            kind, data, section, key, value, typo_of)

    def __repr__(self) -> str:  # hypothesis prints this for a failing example
        return (f"Case({self.kind!r}, section={self.section!r}, key={self.key!r}, value={self.value!r}, "
                f"typo_of={self.typo_of!r}, data[:300]={self.data[:300]!r})")


# ---------------------------------------------------------------------------- the cfg as text
@dataclass
class CfgModel:
    """A cfg as ``[(section, [(key, value_text)])]`` (comments dropped), rendered to text."""

    sections: list[tuple[str, list[tuple[str, str]]]]

    @classmethod
    def parse(cls, text: str) -> "CfgModel":
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith(("#", ";")):
                continue
            if line.startswith("["):
                sections.append((line.strip()[1:-1], []))
            elif line[:1].isspace():
                key, value = sections[-1][1][-1]
                sections[-1][1][-1] = (key, value + "\n" + line.strip())
            else:
                key, _, value = line.partition("=")
                sections[-1][1].append((key.strip(), value.strip()))
        return cls(sections)

    def copy(self) -> "CfgModel":
        return CfgModel([(name, list(keys)) for name, keys in self.sections])

    def render(self) -> str:
        out = []
        for name, keys in self.sections:
            out.append(f"[{name}]")
            for key, value in keys:
                first, *rest = value.split("\n")
                out.append(f"{key} = {first}".rstrip())
                out.extend(f"\t{line}" for line in rest)
            out.append("")
        return "\n".join(out) + "\n"

    def keys_of(self, section: str) -> list[tuple[str, str]]:
        for name, keys in self.sections:
            if name == section:
                return keys
        keys: list[tuple[str, str]] = []
        self.sections.append((section, keys))
        return keys

    def set(self, section: str, key: str, value: str) -> None:
        keys = self.keys_of(section)
        for index, (name, _old) in enumerate(keys):
            if name == key:
                keys[index] = (key, value)
                return
        keys.append((key, value))

    def drop(self, section: str, key: str) -> None:
        keys = self.keys_of(section)
        keys[:] = [(k, v) for k, v in keys if k != key]


IMPLEMENTED = [k for k in schema.table().keys if k.implemented and k.name != schema.ANY_KEY]
KNOWN_SECTIONS = sorted(schema.table().sections)
BAD_VALUE_TEXTS = [
    "", "abc", "-1", "-0.5", "0", "1", "1e999", "-1e999", "nan", "NaN", "inf", "1e308", "1e10",
    "99999999999999999999999", str(2 ** 63), "True", "False", "None", "true", "[1, 2]", '{"a": 1}', "[", "{",
    "FIXME", "$NO_SUCH_VARIABLE", "${NO_SUCH_VARIABLE}", "$$", "%(x)s", "é", "\u202e", "0x10", "1_000", "5s",
    "/nonexistent/dir", "/etc/passwd", "/proc/1", "a b", "x" * 300, "[1, 2", '{"a": }', "1,2", "0.0", "-0",
]
_VALUE_CHARS = st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",))
VALUE_TEXT = st.one_of(
    st.sampled_from(BAD_VALUE_TEXTS),
    st.integers(-2 ** 70, 2 ** 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(_VALUE_CHARS, max_size=20),
)


@st.composite
def typo(draw: Any, name: str) -> str:
    """One edit of ``name``: a character dropped, doubled, swapped, replaced, or the case changed."""
    how = draw(st.sampled_from(["drop", "double", "swap", "replace", "case"]))
    i = draw(st.integers(0, len(name) - 1))
    if how == "drop" and len(name) > 1:
        return name[:i] + name[i + 1:]
    if how == "double":
        return name[:i] + name[i] + name[i:]
    if how == "swap" and i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if how == "case":
        return name.swapcase() if name.swapcase() != name else name + "s"
    return name[:i] + draw(st.sampled_from("aeiostxz_")) + name[i + 1:]


@st.composite
def cfg_case(draw: Any, base: CfgModel, subprocess_safe: bool = False) -> Case:
    """``base`` broken one way. ``subprocess_safe``: nothing that would harm the machine or other
    tests when the daemon really starts (no MariaDB engine, no thousands of threads or processes,
    no other log directory)."""
    model = base.copy()
    kinds = ["value", "value", "value", "typo_key", "typo_section", "drop_key", "drop_section", "dup_key",
             "dup_section", "bytes", "junk_line", "truncate", "empty", "unknown_section"]
    if subprocess_safe:  # refusals are covered in-process: here mostly values the check lets through
        kinds += ["edge"] * len(kinds)
    kind = draw(st.sampled_from(kinds))
    keys = IMPLEMENTED
    if subprocess_safe:
        keys = [k for k in IMPLEMENTED if (k.section, k.name) not in UNSAFE_KEYS and k.section != "log_level"]
    if kind == "value":
        key = draw(st.sampled_from(keys))
        value = draw(VALUE_TEXT)
        if subprocess_safe and key.name in ("nThreads", "nConnections", "fifoMaxWorkersToPopulate"):
            value = draw(st.sampled_from(["0", "1", "2", "-1", "abc", "", "1.5", "None"]))
        model.set(key.section, key.name, value)
        return Case(kind, model.render().encode(), key.section, key.name, value)
    if kind == "edge":
        key = draw(st.sampled_from(keys))
        value = draw(st.sampled_from(edge_values(key, small=subprocess_safe)))
        model.set(key.section, key.name, value)
        return Case(kind, model.render().encode(), key.section, key.name, value)
    if kind == "typo_key":
        section = draw(st.sampled_from([name for name, entries in model.sections
                                        if entries and name in KNOWN_SECTIONS and name != "log_level"]))
        entries = model.keys_of(section)
        index = draw(st.integers(0, len(entries) - 1))
        name, value = entries[index]
        if subprocess_safe and (section, name) in UNSAFE_KEYS:  # a lost logDir: logs elsewhere, etc.
            name = name + "x"
            index = len(entries)
            entries.append((name, value))
        wrong = draw(typo(name))
        known = {k.name for k in schema.table().keys if k.section == section}
        if wrong in known or wrong == name or not wrong.strip() or any(c in wrong for c in "=:[]#;"):
            wrong = name + "x"
        entries[index] = (wrong, value)
        return Case(kind, model.render().encode(), section, wrong, value, typo_of=name)
    if kind == "typo_section":
        index = draw(st.integers(0, len(model.sections) - 1))
        name, entries = model.sections[index]
        wrong = draw(typo(name))
        names = {n for n, _ in model.sections} | set(KNOWN_SECTIONS)
        if wrong in names or any(c in wrong for c in "[]") or not wrong.strip():
            wrong = name + "x"
        model.sections[index] = (wrong, entries)
        return Case(kind, model.render().encode(), wrong, None, None, typo_of=name)
    if kind == "unknown_section":
        name = draw(st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x7f),
                            min_size=1, max_size=12))
        model.sections.append((name, [("someKey", draw(VALUE_TEXT))]))
        return Case(kind, model.render().encode(), name)
    if kind == "drop_key":
        key = draw(st.sampled_from(keys))
        model.drop(key.section, key.name)
        return Case(kind, model.render().encode(), key.section, key.name)
    if kind == "drop_section":
        index = draw(st.integers(0, len(model.sections) - 1))
        name, _ = model.sections.pop(index)
        return Case(kind, model.render().encode(), name)
    if kind == "dup_key":
        section = draw(st.sampled_from([name for name, entries in model.sections if entries]))
        entries = model.keys_of(section)
        name, value = draw(st.sampled_from(entries))
        entries.append((name, draw(st.sampled_from([value, "1", "abc"]))))
        return Case(kind, model.render().encode(), section, name)
    if kind == "dup_section":
        index = draw(st.integers(0, len(model.sections) - 1))
        name, entries = model.sections[index]
        model.sections.append((name, entries[:1]))
        return Case(kind, model.render().encode(), name)
    text = model.render().encode()
    if kind == "bytes":
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.binary(min_size=1, max_size=4).filter(lambda b: not _is_utf8(b)))
        return Case(kind, text[:pos] + junk + text[pos:])
    if kind == "junk_line":
        lines = text.split(b"\n")
        pos = draw(st.integers(0, len(lines)))
        junk = draw(st.text(_VALUE_CHARS, min_size=1, max_size=30)).encode()
        return Case(kind, b"\n".join(lines[:pos] + [junk] + lines[pos:]))
    if kind == "truncate":
        return Case(kind, text[:draw(st.integers(0, len(text) - 1))])
    return Case(kind, b"")


def edge_values(key: schema.Key, small: bool = False) -> list[str]:
    """Values the start-up check accepts for ``key``, at the edges of what it accepts."""
    kind = key.kind
    if isinstance(kind, schema.AnyOf):
        return [v for sub in kind.kinds for v in edge_values(schema.Key(key.section, key.name, sub), small)]
    if isinstance(kind, schema.Number):
        low = kind.min if kind.min is not None else -10 ** 6
        high = kind.max if kind.max is not None else 10 ** 9
        if small and key.name in ("nThreads", "nConnections"):
            high = min(high, 3)
        values = [low, high, low + 1]
        if not isinstance(kind, schema.Int):
            values += [low + 0.5, (low + high) / 2]
        return [repr(int(v)) if float(v).is_integer() else repr(v) for v in values]
    if isinstance(kind, schema.Bool):
        return ["True", "False"]
    if isinstance(kind, schema.Choice):
        return list(kind.options) + [o.upper() for o in kind.options]
    if isinstance(kind, (schema.Directory, schema.SecretFile)):
        return ["/tmp"]
    if isinstance(kind, schema.Json):
        return ["[]" if list in kind.types else "{}"]
    return ["", "x", "é", "a b", "0"]


# keys whose values must stay sane when the daemon really starts (MariaDB, thousands of processes,
# logs elsewhere, user switching)
UNSAFE_KEYS = {("db", "engine"), ("master", "nProcesses"), ("master", "logDir"), ("master", "uname"),
               ("master", "gname"), ("db", "database_filename"), ("fifo", "fifoModule"), ("fifo", "fifoClass"),
               ("monitor", "fifoModule"), ("monitor", "fifoClass"), ("master", "stopTimeout")}


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------- the queue config
def example_queue_config(home: Path) -> dict[str, Any]:
    """``examples/panda_queueconfig_local.json`` + the templated example, paths moved below ``home``."""
    text = (EXAMPLES / "panda_queueconfig_local.json").read_text()
    text = text.replace("/tmp/harvester_local", str(home / "qwork"))
    data = json.loads(text)
    tmpl = json.loads((EXAMPLES / "panda_queueconfig_with_tmpl.json").read_text()
                      .replace("/tmp/harvester_tmpl", str(home / "qwork_tmpl")))
    data.update(tmpl)
    return data


QUEUE_KEY_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
              st.sampled_from(["", "abc", "NoJob", "OneToOne", "self", "slave", "online", "offline", "-1", "10",
                               "a=1,b", "a=1", "running,finished", "ANY", "SCORE", "1e999"]),
              st.text(max_size=12)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
KNOWN_QUEUE_KEYS = sorted(set(QUEUE_LIMIT_ATTRS) | set(PLUGIN_ROLES) | {
    "prodSourceLabel", "mapType", "useJobLateBinding", "zipPerMB", "maxWorkers", "nNewWorkers",
    "maxNewWorkersPerCycle", "noHeartbeat", "runMode", "resourceType", "jobType", "getJobCriteria", "ddmEndpointIn",
    "allowJobMixture", "maxSubmissionAttempts", "truePilot", "queueStatus", "prefetchEvents", "initEventsMultipler",
    "siteFamily", "templateQueueName", "common", "credmanagers", "walltimeLimit", "pandaQueueName"})


@st.composite
def queue_config_case(draw: Any, base: dict[str, Any]) -> Case:
    """``base`` broken one way (a queue's key, a plugin, a template, or the file as a whole)."""
    data = copy.deepcopy(base)
    queues = sorted(data)
    kind = draw(st.sampled_from(["value", "value", "value", "typo_key", "drop_plugin", "plugin_value",
                                 "plugin_import", "plugin_typo", "template", "entry_type", "top_type",
                                 "bad_json", "bytes", "dup_key", "empty"]))
    queue = draw(st.sampled_from(queues))
    entry = data[queue]
    if kind == "value":
        key = draw(st.sampled_from(KNOWN_QUEUE_KEYS))
        value = draw(QUEUE_KEY_VALUES)
        entry[key] = value
        return Case(kind, _dump(data), queue, key, value)
    if kind == "typo_key":
        name = draw(st.sampled_from(sorted(k for k in entry if k in KNOWN_QUEUE_KEYS)))
        wrong = draw(typo(name))
        if wrong in KNOWN_QUEUE_KEYS or wrong in entry:
            wrong = name + "x"
        entry[wrong] = entry.pop(name)
        return Case(kind, _dump(data), queue, wrong, entry[wrong], typo_of=name)
    if kind == "drop_plugin":
        role = draw(st.sampled_from(MANDATORY_PLUGINS))
        entry.pop(role, None)
        return Case(kind, _dump(data), queue, role)
    if kind in ("plugin_value", "plugin_import", "plugin_typo"):
        roles = sorted(r for r in PLUGIN_ROLES if isinstance(entry.get(r), dict))
        role = draw(st.sampled_from(roles or list(MANDATORY_PLUGINS)))
        conf = entry.setdefault(role, {})
        if kind == "plugin_value":
            field = draw(st.sampled_from(["module", "name"]))
            conf[field] = draw(QUEUE_KEY_VALUES)
            return Case(kind, _dump(data), queue, role, conf[field])
        if kind == "plugin_import":
            field = draw(st.sampled_from(["module", "name"]))
            conf[field] = draw(st.sampled_from(["no_such_module", "pandaharvester.no_such", "NoSuchClass", "os",
                                                "pandaharvester.harvestersubmitter", "a..b", "-"]))
            return Case(kind, _dump(data), queue, role, conf[field])
        field = draw(st.sampled_from([f for f in ("module", "name") if f in conf] or ["module"]))
        wrong = draw(typo(field))
        if wrong in ("module", "name"):
            wrong = field + "x"
        if field in conf:
            conf[wrong] = conf.pop(field)
        return Case(kind, _dump(data), queue, role, wrong, typo_of=field)
    if kind == "template":
        entry["templateQueueName"] = draw(st.sampled_from(["NO_SUCH_TEMPLATE", "", "LOCAL_PUSH", 5, None]))
        return Case(kind, _dump(data), queue, "templateQueueName", entry["templateQueueName"])
    if kind == "entry_type":
        data[queue] = draw(st.sampled_from([[], "text", 5, None, True, [entry]]))
        return Case(kind, _dump(data), queue, None, data[queue])
    if kind == "top_type":
        return Case(kind, _dump(draw(st.sampled_from([[], [data], "text", 5, None, True]))))
    text = _dump(data)
    if kind == "bad_json":
        pos = draw(st.integers(0, len(text) - 1))
        how = draw(st.sampled_from(["cut", "insert"]))
        extra = draw(st.sampled_from([b",", b"{", b"]", b'"', b"x"]))
        broken = text[:pos] if how == "cut" else text[:pos] + extra + text[pos:]
        return Case(kind, broken)
    if kind == "bytes":
        pos = draw(st.integers(0, len(text)))
        return Case(kind, text[:pos] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\x80", b"\xfe\xff"])) + text[pos:])
    if kind == "dup_key":
        # the queue given twice: JSON keeps the last one silently
        one = json.dumps({queue: entry}, indent=1)[1:-2]
        return Case(kind, text[:-2] + b",\n" + one.encode() + b"\n}", queue)
    return Case(kind, b"")


def _dump(data: Any) -> bytes:
    return json.dumps(data, indent=1).encode()


def one_line(text: str) -> bool:
    return "\n" not in text and "\r" not in text and "Traceback" not in text


def names(line: str, *parts: str | None) -> bool:
    """Whether ``line`` names every given part (None parts are not required)."""
    return all(part is None or part in line for part in parts)


_WORD = re.compile(r"[A-Za-z_]+")
