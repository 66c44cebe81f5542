"""Common machinery of the ``XyzSpec`` classes that map to DB tables.

A spec is a plain object whose DB columns are ordinary instance attributes. Each concrete spec
class declares ``attributesWithTypes``, a tuple of ``"name:sqltype[ / index| / unique]"``
strings in column order. Everything derived from that declaration (column list, blob columns,
default values, SQL fragments) is computed once per class, when the class is created.

Assigning a column attribute records its name in ``changedAttrs`` when the value differs from
the current one, so that the DB layer writes only what changed. Non-column attributes are set
without bookkeeping. Columns typed ``blob`` hold Python objects and are stored as JSON text;
objects JSON cannot express (datetimes, sets, ...) are embedded as base64 pickles by
:class:`PythonObjectEncoder` and restored by :func:`as_python_object`.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["SpecBase", "PythonObjectEncoder", "as_python_object", "encode_blob", "decode_blob", "LazyBlob"]

# key marking an embedded pickle inside a JSON blob
NON_JSON_KEY = "_non_json_object"

# sentinel for "attribute not set yet"
_MISSING = object()


class PythonObjectEncoder(json.JSONEncoder):
    """JSON encoder that embeds objects JSON cannot represent as ``{"_non_json_object": b64}``.

    The payload is the base64 text of the object's pickle. Proxies of remote objects (rpyc
    netrefs, used by the SSH/RPC middleware) are fetched to local copies first.
    """

    def default(self, o: Any) -> Any:
        if type(o).__module__.startswith("rpyc"):
            try:  # a remote object reference: work on a local copy
                from rpyc.utils.classic import obtain  # type: ignore[import-not-found]

                o = obtain(o)
            except Exception:  # noqa: BLE001 - fall back to pickling the object as is
                pass
        payload = pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)
        return {NON_JSON_KEY: base64.b64encode(payload).decode("ascii")}


def as_python_object(dct: dict) -> Any:
    """``object_hook`` for :func:`json.loads` reversing :class:`PythonObjectEncoder`."""
    if NON_JSON_KEY in dct:
        payload = dct[NON_JSON_KEY]
        if isinstance(payload, str):
            try:
                raw = base64.b64decode(payload.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError):
                # legacy form: the pickle text itself (protocol 0 pickles are text)
                raw = payload.encode("latin-1")
        else:
            raw = bytes(payload)
        try:
            return pickle.loads(raw, encoding="latin1")
        except Exception:  # noqa: BLE001 - undecodable payload: leave the dict as stored
            return dct
    return dct


# one shared encoder/decoder: they hold only configuration, so they are thread safe
_ENCODER = PythonObjectEncoder()
_DECODER = json.JSONDecoder(object_hook=as_python_object)
_PLAIN_DECODER = json.JSONDecoder()


def encode_blob(value: Any) -> str:
    """JSON text stored in a blob column (``None`` becomes ``"null"``, as in the original)."""
    return _ENCODER.encode(value)


def _encode_value(value: Any) -> str:
    if type(value) is LazyBlob:  # never decoded: the stored text is still right
        return value.text
    return "null" if value is None else _ENCODER.encode(value)


def decode_blob(value: Any) -> Any:
    """Python object from a blob column value; undecodable values are returned unchanged."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return value
    if not isinstance(value, str):
        return value
    try:
        # the object hook costs a Python call per JSON object: use it only when needed
        if NON_JSON_KEY in value:
            return _DECODER.decode(value)
        return _PLAIN_DECODER.decode(value)
    except ValueError:
        return value


class LazyBlob:
    """The stored JSON text of a blob column read from the DB and not decoded yet.

    Only inside a spec's ``__dict__`` for the columns in ``lazyBlobAttrs``: attribute access
    decodes it (once) through :class:`_LazyBlobAttr`, so callers always see the Python object.
    """

    __slots__ = ("text",)

    def __init__(self, text: Any) -> None:
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                text = bytes(text)
        self.text = text

    def decode(self) -> Any:
        return decode_blob(self.text)

    def __eq__(self, other: Any) -> bool:
        return self.decode() == (other.decode() if type(other) is LazyBlob else other)

    __hash__ = None  # type: ignore[assignment]


class _LazyBlobAttr:
    """Data descriptor of a lazily decoded blob column: decodes a :class:`LazyBlob` on first read."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        try:
            value = d[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if type(value) is LazyBlob:
            value = d[self.name] = value.decode()
        return value

    def __set__(self, obj: Any, value: Any) -> None:  # SpecBase.__setattr__ does the tracking
        obj.__dict__[self.name] = value


def _decoded(value: Any) -> Any:
    return value.decode() if type(value) is LazyBlob else value


def _parse_declaration(decl: str) -> tuple[str, str, frozenset[str]]:
    """``"name:type / index"`` → (name, "type", {"index"})."""
    name, _, rest = decl.partition(":")
    parts = [p.strip() for p in rest.split("/")]
    return name.strip(), parts[0], frozenset(p.lower() for p in parts[1:] if p)


class SpecBase:
    """Base class of all specs; see the module docstring for the model.

    Subclasses set ``attributesWithTypes`` and optionally ``zeroAttrs`` (columns that read 0
    instead of None) and ``skipAttrsToSlim`` (columns left None by a slim read). Subclasses that
    need non-column instance attributes override :meth:`_init_extra_attributes`, which runs on
    construction and again on unpickling.
    """

    # declared by subclasses
    attributesWithTypes: ClassVar[tuple[str, ...]] = ()
    zeroAttrs: ClassVar[tuple[str, ...]] = ()
    skipAttrsToSlim: ClassVar[tuple[str, ...] | str] = ()
    # blob columns decoded on first attribute access instead of when the row is read
    lazyBlobAttrs: ClassVar[tuple[str, ...]] = ()

    # derived once per class by __init_subclass__ (read-only by convention)
    attributes: ClassVar[tuple[str, ...]] = ()
    serializedAttrs: ClassVar[frozenset[str]] = frozenset()
    _column_set: ClassVar[frozenset[str]] = frozenset()
    _column_types: ClassVar[dict[str, str]] = {}
    _indexed: ClassVar[tuple[str, ...]] = ()
    _unique: ClassVar[tuple[str, ...]] = ()
    _primary_key: ClassVar[str | None] = None
    _defaults: ClassVar[dict[str, Any]] = {}
    _slim_skip: ClassVar[frozenset[str]] = frozenset()
    _slim_columns: ClassVar[tuple[str, ...]] = ()
    _bind_keys: ClassVar[tuple[str, ...]] = ()
    _zero_set: ClassVar[frozenset[str]] = frozenset()
    _zero_index: ClassVar[tuple[int, ...]] = ()
    _blob_index: ClassVar[tuple[int, ...]] = ()
    _names_cache: ClassVar[dict[tuple[str | None, bool], str]] = {}
    _bind_values: ClassVar[str] = "VALUES()"
    _lazy_set: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._setup_columns()

    @classmethod
    def _setup_columns(cls) -> None:
        names: list[str] = []
        types: dict[str, str] = {}
        indexed: list[str] = []
        unique: list[str] = []
        blobs: set[str] = set()
        primary = None
        for decl in cls.attributesWithTypes:
            name, sql_type, flags = _parse_declaration(decl)
            names.append(name)
            types[name] = sql_type
            if "index" in flags:
                indexed.append(name)
            if "unique" in flags:
                unique.append(name)
            if sql_type.split()[0].lower() == "blob":
                blobs.add(name)
            if primary is None and "primary key" in sql_type.lower():
                primary = name
        zero = set(cls.zeroAttrs)
        skip = cls.skipAttrsToSlim
        # the original JobSpec declares a bare string; treat it as one name
        slim_skip = frozenset((skip,) if isinstance(skip, str) else skip)
        cls.attributes = tuple(names)
        cls.serializedAttrs = frozenset(blobs)
        cls._column_set = frozenset(names)
        cls._column_types = types
        cls._indexed = tuple(indexed)
        cls._unique = tuple(unique)
        cls._primary_key = primary
        cls._defaults = {n: (0 if n in zero else None) for n in names}
        cls._slim_skip = slim_skip
        cls._slim_columns = tuple(n for n in names if n not in slim_skip)
        cls._bind_keys = tuple(":" + n for n in names)
        cls._zero_set = frozenset(zero)
        cls._zero_index = tuple(i for i, n in enumerate(names) if n in zero)
        cls._blob_index = tuple(i for i, n in enumerate(names) if n in blobs)
        cls._names_cache = {}
        cls._bind_values = "VALUES(" + ",".join(":" + n for n in names) + ")"
        cls._lazy_set = frozenset(n for n in cls.lazyBlobAttrs if n in blobs)
        for name in cls._lazy_set:
            setattr(cls, name, _LazyBlobAttr(name))

    # ------------------------------------------------------------------ construction
    def __init__(self) -> None:
        d = self.__dict__
        d.update(self._defaults)
        d["changedAttrs"] = set()
        self._init_extra_attributes()

    def _init_extra_attributes(self) -> None:
        """Set non-column attributes to their initial values (hook for subclasses)."""

    @classmethod
    def from_values(cls, values: Any, slim: bool = False) -> "SpecBase":
        """New spec filled from a DB row (see :meth:`pack`), with an empty change record."""
        spec = cls.__new__(cls)
        d = spec.__dict__
        d.update(cls._defaults)
        d["changedAttrs"] = set()
        spec._init_extra_attributes()
        spec.pack(values, slim=slim)
        return spec

    # ------------------------------------------------------------------ change tracking
    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._column_set:
            d = self.__dict__
            old = d.get(name, _MISSING)
            d[name] = value
            if old is _MISSING or old is not value and old != value:
                d["changedAttrs"].add(name)
        else:
            object.__setattr__(self, name, value)

    def reset_changed_list(self) -> None:
        """Forget which columns changed (after a DB write or read)."""
        self.__dict__["changedAttrs"] = set()

    def force_update(self, name: str) -> None:
        """Mark column ``name`` as changed (for in-place changes of blob contents)."""
        if name in self._column_set:
            self.changedAttrs.add(name)

    def force_not_update(self, name: str) -> None:
        """Drop column ``name`` from the change record."""
        self.changedAttrs.discard(name)

    def has_updated_attributes(self) -> bool:
        """True when at least one column changed."""
        return bool(self.changedAttrs)

    def get_changed_attributes(self) -> dict[str, Any]:
        """``{column: current value}`` for the changed columns, in column order."""
        changed = self.changedAttrs
        d = self.__dict__
        return {n: _decoded(d.get(n)) for n in self.attributes if n in changed}

    def set_attributes_with_dict(self, attr_dict: Mapping[str, Any]) -> None:
        """Assign every item of ``attr_dict`` as an attribute (with change tracking)."""
        for name, value in attr_dict.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("changedAttrs", None)
        for name in self._lazy_set:
            if name in state:
                state[name] = _decoded(state[name])
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        # Pickles written by the original (Python 2) also hold 'attributes', 'serializedAttrs'
        # and 'changedAttrs' in the instance state; those are per class here, and an
        # unpickled spec starts with an empty change record.
        d = self.__dict__
        d.update(self._defaults)
        d["changedAttrs"] = set()
        self._init_extra_attributes()
        for key, value in state.items():
            if key in ("attributes", "serializedAttrs", "changedAttrs"):
                continue
            d[key] = value

    # ------------------------------------------------------------------ DB rows
    def pack(self, values: Any, slim: bool = False) -> None:
        """Fill columns from a DB row without recording changes.

        ``values`` is a mapping (dict, namedtuple, ``sqlite3.Row`` with names), or a sequence in
        column order: all columns, or the slim columns (``column_names(slim=True)``) when
        ``slim`` is true. Blob columns are JSON-decoded; with ``slim`` the columns listed in
        ``skipAttrsToSlim`` are set to None.
        """
        d = self.__dict__
        if type(values) is tuple or type(values) is list:  # namedtuples go by name below
            n_values = len(values)
            if n_values == len(self.attributes):
                d.update(zip(self.attributes, values))
            elif n_values == len(self._slim_columns):
                d.update(zip(self._slim_columns, values))
                slim = True
            else:
                raise ValueError(
                    f"{type(self).__name__}.pack: got {n_values} values, expected "
                    f"{len(self.attributes)} (all columns) or {len(self._slim_columns)} (slim columns)"
                )
        else:
            if hasattr(values, "_asdict"):
                values = values._asdict()
            elif not isinstance(values, Mapping):
                if hasattr(values, "keys"):  # sqlite3.Row and similar
                    values = dict(zip(values.keys(), values))
                else:  # any other iterable: a row in column order
                    self.pack(tuple(values), slim=slim)
                    return
            skip = self._slim_skip if slim else ()
            for name in self.attributes:
                if name not in skip:
                    d[name] = values[name]
        # JSON-decode the blob columns that hold something (the lazy ones on first access)
        lazy = self._lazy_set
        for name in self.serializedAttrs:
            value = d[name]
            if value is not None and not (slim and name in self._slim_skip):
                if value == "null":
                    d[name] = None
                elif name in lazy:
                    d[name] = LazyBlob(value)
                else:
                    d[name] = decode_blob(value)
        if slim:
            for name in self._slim_skip:
                d[name] = None

    def set_blob_attribute(self, key: str, val: Any) -> None:
        """Set ``key`` from JSON text without recording a change; invalid JSON is ignored."""
        if val is None:
            return
        try:
            if isinstance(val, (bytes, bytearray)):
                val = bytes(val).decode("utf-8")
            decoded = _DECODER.decode(val)
        except (ValueError, TypeError):
            return
        self.__dict__[key] = decoded

    def _changed_in_order(self) -> list[str]:
        changed = self.changedAttrs
        return [n for n in self.attributes if n in changed] if changed else []

    def values_list(self, only_changed: bool = False) -> list[Any]:
        """Column values in column order (only changed ones if asked); blobs as JSON text."""
        d = self.__dict__
        if not only_changed:
            out = list(map(d.get, self.attributes))
            for i in self._zero_index:
                if out[i] is None:
                    out[i] = 0
            for i in self._blob_index:
                out[i] = _encode_value(out[i])
            return out
        zero, blobs = self._zero_set, self.serializedAttrs
        out = []
        for name in self._changed_in_order():
            val = d.get(name)
            if val is None and name in zero:
                val = 0
            elif name in blobs:
                val = _encode_value(val)
            out.append(val)
        return out

    def values_map(self, only_changed: bool = False) -> dict[str, Any]:
        """``{":column": value}`` bind map (only changed columns if asked); blobs as JSON text."""
        d = self.__dict__
        if not only_changed:
            out = dict(zip(self._bind_keys, map(d.get, self.attributes)))
            for name in self.zeroAttrs:
                if out[":" + name] is None:
                    out[":" + name] = 0
            for name in self.serializedAttrs:
                out[":" + name] = _encode_value(d.get(name))
            return out
        zero, blobs = self._zero_set, self.serializedAttrs
        out = {}
        for name in self._changed_in_order():
            val = d.get(name)
            if val is None and name in zero:
                val = 0
            elif name in blobs:
                val = _encode_value(val)
            out[":" + name] = val
        return out

    # ------------------------------------------------------------------ SQL fragments
    @classmethod
    def column_names(cls, prefix: str | None = None, slim: bool = False) -> str:
        """Comma-joined column names, optionally ``prefix.``-qualified, without slim-skipped ones."""
        key = (prefix, bool(slim))
        cached = cls._names_cache.get(key)
        if cached is None:
            names = cls._slim_columns if slim else cls.attributes
            if prefix is not None:
                names = tuple(f"{prefix}.{n}" for n in names)
            cached = ",".join(names)
            cls._names_cache[key] = cached
        return cached

    @classmethod
    def bind_values_expression(cls) -> str:
        """``"VALUES(:a,:b,...)"`` for an INSERT of all columns."""
        return cls._bind_values

    def bind_update_changes_expression(self) -> str:
        """``"a=:a,b=:b "`` for the changed columns (a lone space when nothing changed)."""
        changed = self.changedAttrs
        return ",".join(f"{n}=:{n}" for n in self.attributes if n in changed) + " "

    # ------------------------------------------------------------------ schema helpers (DB layer)
    @classmethod
    def column_list(cls) -> tuple[str, ...]:
        """Column names in declaration order."""
        return cls.attributes

    @classmethod
    def column_types(cls) -> dict[str, str]:
        """``{column: sql type as declared}``, e.g. ``"integer primary key"``."""
        return dict(cls._column_types)

    @classmethod
    def indexed_columns(cls) -> tuple[str, ...]:
        """Columns declared with ``/ index``."""
        return cls._indexed

    @classmethod
    def unique_columns(cls) -> tuple[str, ...]:
        """Columns declared with ``/ unique``."""
        return cls._unique

    @classmethod
    def blob_columns(cls) -> frozenset[str]:
        """Columns of type ``blob`` (JSON-serialised)."""
        return cls.serializedAttrs

    @classmethod
    def primary_key(cls) -> str | None:
        """The column whose type contains ``primary key``, or None."""
        return cls._primary_key

    @classmethod
    def slim_column_list(cls) -> tuple[str, ...]:
        """Column names read by a slim query (``column_names(slim=True)``), in order."""
        return cls._slim_columns

    def __repr__(self) -> str:
        pk = self._primary_key
        ident = f" {pk}={self.__dict__.get(pk)!r}" if pk else ""
        return f"<{type(self).__name__}{ident}>"
