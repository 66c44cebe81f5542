"""Cacher agent: refreshes the DB cache (cache_table) from files, URLs and the PanDA server.

``[cacher] data`` lists entries ``mainKey|subKey|URL[|dumpFile]``; an entry is refreshed when
its cache row is older than ``refreshInterval`` minutes. URL forms: ``file:<path>``,
``http(s)://...`` (https with the ``[pandacon]`` cert/key/CA), ``panda_cache:<pub>&<priv>``
(communicator ``get_key_pair``) and ``panda_server:<method>`` (a communicator getter such as
``get_resource_types``). ``${VAR}`` in a URL is replaced by the environment variable.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("cacher")

_ENV_VAR = re.compile(r"\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
HTTP_TIMEOUT = 60


def parse_data_entries(entries: Any) -> list[tuple[str, str | None, str, str | None]]:
    """``[cacher] data`` → ``[(mainKey, subKey or None, url, dumpFile or None)]`` (bad lines dropped)."""
    if isinstance(entries, str):
        entries = [entries]
    items = []
    for entry in entries or []:
        parts = str(entry).strip().split("|")
        if len(parts) < 3:
            _logger.error(f"[cacher] data entry {entry!r} is not mainKey|subKey|URL[|dumpFile]: skipped")
            continue
        parts = (parts + [None])[:4]
        main_key, sub_key, url, dump_file = parts
        items.append((main_key, sub_key or None, url, dump_file or None))
    return items


class Cacher(AgentBase):
    """Keeps the cache_table rows fresh."""

    cfg_section = "cacher"
    log_name = "cacher"
    randomize_sleep = False

    def __init__(self, communicator: Any, single_mode: bool = False) -> None:
        super().__init__(single_mode, communicator=communicator)

    def run_cycle(self) -> bool:
        self.execute()
        return False

    def execute(self, force_update: bool = False, skip_lock: bool = False, n_thread: int = 0) -> None:
        """Refresh every stale entry (all of them with ``force_update``), under lock "cacher"."""
        main_log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="execute")
        if not skip_lock and not self.acquire_process_lock("cacher", self.sleep_time()):
            main_log.debug("skipped : another thread holds the lock")
            return
        time_limit = core_utils.naive_utcnow() - datetime.timedelta(minutes=self.cfg("refreshInterval"))
        items = parse_data_entries(self.cfg("data", []))

        def refresh(item: tuple[str, str | None, str, str | None]) -> None:
            try:
                self.refresh_entry(item, time_limit, force_update, main_log)
            except Exception:
                core_utils.dump_error_message(main_log)

        if n_thread:
            with ThreadPoolExecutor(n_thread) as pool:
                list(pool.map(refresh, items))
        else:
            for item in items:
                refresh(item)
        main_log.debug(f"checked {len(items)} entries")

    def refresh_entry(self, item: tuple[str, str | None, str, str | None], time_limit: datetime.datetime,
                      force_update: bool, main_log: Any) -> bool:
        """Fetch and store one entry if stale; True when the cache row was refreshed."""
        main_key, sub_key, url, dump_file = item
        if not force_update:
            last_update = self.dbProxy.get_cache_last_update_time(main_key, sub_key)
            if last_update is not None and last_update > time_limit:
                return False
        ok, data = self.get_data(url, main_log)
        if not ok:
            main_log.error(f"failed to get info for key={main_key} subKey={sub_key}")
            return False
        if not self.dbProxy.refresh_cache(main_key, sub_key, data):
            main_log.error(f"failed to refresh key={main_key} subKey={sub_key} due to a DB error")
            return False
        main_log.debug(f"refreshed key={main_key} subKey={sub_key}")
        if dump_file is not None:
            self.dump(data, dump_file, main_log)
        return True

    @staticmethod
    def dump(data: Any, dump_file: str, tmp_log: Any) -> None:
        """Write ``data`` as JSON to ``dump_file`` atomically."""
        try:
            tmp_name = f"{dump_file}.tmp"
            with open(tmp_name, "w") as stream:
                json.dump(data, stream)
            os.replace(tmp_name, dump_file)
        except Exception:
            core_utils.dump_error_message(tmp_log)

    # ------------------------------------------------------------ fetching
    def get_data(self, info_url: str, tmp_log: Any) -> tuple[bool, Any]:
        """``(True, data)`` fetched from ``info_url``, or ``(False, None)`` with the error logged."""
        url = self.resolve_env(info_url, tmp_log)
        if url is None:
            return False, None
        value = None
        try:
            if url.startswith("file:"):
                value = self._get_file(url)
            elif url.startswith(("http:", "https:")):
                value = self._get_http(url, tmp_log)
            elif url.startswith("panda_cache:"):
                public_key, private_key = url.split(":", 1)[1].split("&")
                value, message = self.communicator.get_key_pair(public_key, private_key)
                if value is None:
                    tmp_log.error(message)
            elif url.startswith("panda_server:"):
                method = getattr(self.communicator, url.split(":", 1)[1])
                value, message = method()
                if not value:
                    tmp_log.error(f"{url} : {message}")
            else:
                tmp_log.error(f"unsupported protocol for {url}: use file:, http:, https:, panda_cache: or panda_server:")
        except Exception:
            core_utils.dump_error_message(tmp_log)
            value = None
        return value is not None, value

    @staticmethod
    def resolve_env(url: str, tmp_log: Any) -> str | None:
        """Replace ``${VAR}`` by the environment variable; None (logged) when it is undefined."""
        missing = [m.group(1) or m.group(2) for m in _ENV_VAR.finditer(url)
                   if (m.group(1) or m.group(2)) not in os.environ]
        if missing:
            tmp_log.error(f"undefined environment variable: {', '.join(missing)} in {url}")
            return None
        return _ENV_VAR.sub(lambda m: os.environ[m.group(1) or m.group(2)], url)

    @staticmethod
    def _get_file(url: str) -> Any:
        path = url[len("file:"):]
        if path.startswith("//"):
            path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
        with open(path) as stream:
            text = stream.read()
        try:
            return json.loads(text)
        except ValueError:
            return text

    @staticmethod
    def _get_http(url: str, tmp_log: Any) -> Any:
        import requests

        try:
            if url.startswith("https:"):
                ca_cert = Cacher.cfg_value("pandacon", "ca_cert", True)
                cert_file = Cacher.cfg_value("pandacon", "cert_file", None)
                cert = None
                if ca_cert is not False and cert_file:
                    cert = (cert_file, Cacher.cfg_value("pandacon", "key_file", None) or cert_file)
                try:
                    res = requests.get(url, cert=cert, verify=ca_cert if ca_cert else False, timeout=HTTP_TIMEOUT)
                except (requests.exceptions.SSLError, OSError):
                    res = requests.get(url, timeout=HTTP_TIMEOUT)
            else:
                res = requests.get(url, timeout=HTTP_TIMEOUT)
        except requests.exceptions.Timeout:
            tmp_log.error(f"read timeout when getting data from {url}")
            return None
        if res.status_code != 200:
            tmp_log.error(f"failed to get {url} with StatusCode={res.status_code} {res.text[:200]}")
            return None
        try:
            return res.json()
        except ValueError:
            tmp_log.error(f"corrupted json from {url} : {res.text[:200]}")
            return None
