"""Redis FIFO backend (redis-py): per FIFO a sorted set of waiting ids by score, a sorted set of
temporary ids (keeping their scores, so that ``restore`` puts them back in order) and a hash of
items, under the keys ``<titleName>-fifo_id-score``, ``-fifo_id-temp`` and ``-fifo_id-item`` (with
``[db] tablePrefix`` in front when it is set).

New ids count up from 10**12 (all of one length: objects of equal score, which Redis orders
by id text, come out in the order they were put). Every operation that moves objects is one Lua script, which Redis runs atomically: two
processes never get the same object. Server keys (the FIFO's section first, then ``[fifo]``):
``redisHost`` (127.0.0.1), ``redisPort`` (6379), ``redisDB`` (0), ``redisPassword`` (none).
"""

from __future__ import annotations

from typing import Any

from pandaharvester.errors import ConfigError
from pandaharvester.harvesterconfig import harvester_config
from pandaharvester.harvesterfifo.base_fifo import COND_SCORE_SQL, BaseFifo, check_ids, check_mode

# KEYS: score, temp, item. ARGV: mode, min, max, count (-1 all), protective(1/0), temporary(1/0)
_POP = """
local src = KEYS[1]
if ARGV[6] == '1' then src = KEYS[2] end
local ids
if ARGV[1] == 'last' then
  ids = redis.call('ZREVRANGEBYSCORE', src, ARGV[3], ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
else
  ids = redis.call('ZRANGEBYSCORE', src, ARGV[2], ARGV[3], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
end
local out = {}
for i = 1, #ids, 2 do
  local id, score = ids[i], ids[i + 1]
  redis.call('ZREM', src, id)
  local item = redis.call('HGET', KEYS[3], id)
  if ARGV[5] == '1' and ARGV[6] ~= '1' then
    redis.call('ZADD', KEYS[2], score, id)
  else
    redis.call('HDEL', KEYS[3], id)
  end
  table.insert(out, id)
  table.insert(out, item or false)
  table.insert(out, score)
end
return out
"""
# KEYS: score, temp, item, seq. ARGV: item, score, id ('' for a new one)
_PUT = """
local id = ARGV[3]
if id == '' then
  id = tostring(1000000000000 + redis.call('INCR', KEYS[4]))
elseif redis.call('HEXISTS', KEYS[3], id) == 1 then
  return false
end
redis.call('HSET', KEYS[3], id, ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], id)
return id
"""
# KEYS: score, temp, item. ARGV: id, item, has_item, score ('' none), temporary ('' none), cond ('' none)
_UPDATE = """
local id = ARGV[1]
local in_temp = redis.call('ZSCORE', KEYS[2], id)
local in_main = redis.call('ZSCORE', KEYS[1], id)
if not in_temp and not in_main then return 0 end
local score = ARGV[4]
local cur = in_main or in_temp
if score == '' then
  score = cur
elseif ARGV[6] ~= '' then
  local new, old = tonumber(score), tonumber(cur)
  local c = ARGV[6]
  if (c == 'gt' and not (new > old)) or (c == 'ge' and not (new >= old)) or
     (c == 'lt' and not (new < old)) or (c == 'le' and not (new <= old)) then return 0 end
end
if ARGV[3] == '1' then redis.call('HSET', KEYS[3], id, ARGV[2]) end
local to_temp = (in_temp ~= false)
if ARGV[5] == '1' then to_temp = true elseif ARGV[5] == '0' then to_temp = false end
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
if to_temp then redis.call('ZADD', KEYS[2], score, id) else redis.call('ZADD', KEYS[1], score, id) end
return 1
"""
# KEYS: score, temp. ARGV: ids (none: all)
_RESTORE = """
local ids = ARGV
if #ids == 0 then
  ids = redis.call('ZRANGE', KEYS[2], 0, -1)
end
local n = 0
for _, id in ipairs(ids) do
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[1], score, id)
    n = n + 1
  end
end
return n
"""


def _bound(value: float | None, low: bool) -> str:
    if value is None:
        return "-inf" if low else "+inf"
    return repr(float(value))


class RedisFifo(BaseFifo):
    """The FIFO in Redis (see the module docstring)."""

    def __init__(self, **kwarg: Any) -> None:
        super().__init__(**kwarg)
        try:
            import redis
        except ImportError:
            raise ConfigError("fifoModule = pandaharvester.harvesterfifo.redis_fifo needs redis-py: "
                              "pip install 'pandaharvester[redis]'") from None
        host, where = self.setting("redisHost", "127.0.0.1")
        port = int(self.setting("redisPort", 6379)[0])
        options: dict[str, Any] = {"host": host, "port": port, "db": int(self.setting("redisDB", 0)[0]),
                                   "socket_connect_timeout": 10}
        password = self.setting("redisPassword", None)[0]
        if password:
            options["password"] = password
        self.qconn = redis.Redis(**options)
        try:
            self.qconn.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"{where} redisHost = {host!r}, redisPort = {port}: cannot reach Redis for the "
                              f"{self.titleName} FIFO: {exc}; start redis-server or fix these keys") from None
        name = f"{self.instance_prefix()}{self.titleName}"
        self.id_score = f"{name}-fifo_id-score"
        self.id_item = f"{name}-fifo_id-item"
        self.id_temp = f"{name}-fifo_id-temp"
        self.id_seq = f"{name}-fifo_id-seq"
        self._pop_script = self.qconn.register_script(_POP)
        self._put_script = self.qconn.register_script(_PUT)
        self._update_script = self.qconn.register_script(_UPDATE)
        self._restore_script = self.qconn.register_script(_RESTORE)

    def fifo_section_values(self) -> dict[str, Any]:
        try:
            return {
                "redisHost": getattr(harvester_config.fifo, "redisHost", None),
                "redisPort": getattr(harvester_config.fifo, "redisPort", None),
                "redisDB": getattr(harvester_config.fifo, "redisDB", None),
                "redisPassword": getattr(harvester_config.fifo, "redisPassword", None),
            }
        except AttributeError:  # no [fifo] section
            return {}

    @staticmethod
    def _id(raw: Any) -> Any:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return int(text) if text.lstrip("-").isdigit() else text

    def _records(self, flat: list[Any]) -> list[tuple]:
        return [(self._id(flat[i]), flat[i + 1] if flat[i + 1] else None, float(flat[i + 2]))
                for i in range(0, len(flat), 3)]

    # ------------------------------------------------------------ interface
    def size(self) -> int:
        return int(self.qconn.zcard(self.id_score))

    def put(self, item: bytes, score: float) -> bool:
        return self._put_script(keys=[self.id_score, self.id_temp, self.id_item, self.id_seq],
                                args=[item, repr(float(score)), ""]) is not None

    def putbyid(self, id: Any, item: bytes, score: float) -> bool:
        return self._put_script(keys=[self.id_score, self.id_temp, self.id_item, self.id_seq],
                                args=[item, repr(float(score)), str(id)]) is not None

    def _pop_many(self, mode: str, minscore: float | None, maxscore: float | None, count: int | None,
                  protective: bool, temporary: bool) -> list[tuple]:
        check_mode(mode)
        flat = self._pop_script(keys=[self.id_score, self.id_temp, self.id_item],
                                args=[mode, _bound(minscore, True), _bound(maxscore, False),
                                      -1 if count is None else int(count), int(protective), int(temporary)])
        return self._records(flat)

    def _pop(self, mode: str, timeout: float | None, protective: bool) -> tuple | None:
        def attempt() -> tuple | None:
            got = self._pop_many(mode, None, None, 1, protective, False)
            return got[0] if got else None

        return self.wait_for(attempt, timeout)

    def get(self, timeout: float | None = None, protective: bool = False) -> tuple | None:
        return self._pop("first", timeout, protective)

    def getlast(self, timeout: float | None = None, protective: bool = False) -> tuple | None:
        return self._pop("last", timeout, protective)

    def getmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                count: int | None = None, protective: bool = False, temporary: bool = False) -> list[tuple]:
        return self._pop_many(mode, minscore, maxscore, count, protective, temporary)

    def peekmany(self, mode: str = "first", minscore: float | None = None, maxscore: float | None = None,
                 count: int | None = None, skip_item: bool = False) -> list[tuple]:
        check_mode(mode)
        low, high = _bound(minscore, True), _bound(maxscore, False)
        limit = {} if count is None else {"start": 0, "num": int(count)}
        if mode == "last":
            pairs = self.qconn.zrevrangebyscore(self.id_score, high, low, withscores=True, **limit)
        else:
            pairs = self.qconn.zrangebyscore(self.id_score, low, high, withscores=True, **limit)
        if not pairs:
            return []
        items = [None] * len(pairs) if skip_item else self.qconn.hmget(self.id_item, [p[0] for p in pairs])
        return [(self._id(raw_id), item, float(score)) for (raw_id, score), item in zip(pairs, items)]

    def peek(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("first", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peeklast(self, skip_item: bool = False) -> tuple | None:
        got = self.peekmany("last", count=1, skip_item=skip_item)
        return got[0] if got else None

    def peekbyid(self, id: Any, temporary: bool = False, skip_item: bool = False) -> tuple | None:
        score = self.qconn.zscore(self.id_temp if temporary else self.id_score, str(id))
        if score is None:
            return None
        item = None if skip_item else self.qconn.hget(self.id_item, str(id))
        return id, item, float(score)

    def clear(self) -> None:
        self.qconn.delete(self.id_score, self.id_item, self.id_temp, self.id_seq)

    def delete(self, ids: list | tuple) -> int:
        check_ids(ids)
        if not ids:
            return 0
        keys = [str(i) for i in ids]
        with self.qconn.pipeline(transaction=True) as pipe:
            pipe.zrem(self.id_score, *keys)
            pipe.zrem(self.id_temp, *keys)
            pipe.hdel(self.id_item, *keys)
            _n_main, _n_temp, n_items = pipe.execute()
        return int(n_items)

    def restore(self, ids: list | tuple | None = None) -> int:
        check_ids(ids, allow_none=True)
        if ids is not None and not ids:
            return 0
        return int(self._restore_script(keys=[self.id_score, self.id_temp], args=[str(i) for i in (ids or [])]))

    def update(self, id: Any, item: bytes | None = None, score: float | None = None, temporary: int | None = None,
               cond_score: str | None = None) -> bool:
        if item is None and score is None and temporary is None:
            return False
        temp_arg = "" if temporary is None else ("1" if temporary else "0")
        return bool(self._update_script(keys=[self.id_score, self.id_temp, self.id_item],
                                        args=[str(id), item if item is not None else b"", int(item is not None),
                                              "" if score is None else repr(float(score)), temp_arg,
                                              cond_score if cond_score in COND_SCORE_SQL else ""]))
