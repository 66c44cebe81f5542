"""Communicator with the PanDA server over its REST API v1 (``/api/v1/<module>/<function>``).

Method names and return shapes are the original Harvester's, so agents and plugins written
for it work unchanged; every method also returns its usual shape on failure (never raises).
The job and event methods live in :mod:`.jobs_api`, file transfers in :mod:`.files_api`;
HTTP, retries, auth and log masking in :mod:`.http_client`, :mod:`.transport`, :mod:`.auth`,
:mod:`.redact`; cfg reading in :mod:`.settings`.

One instance is used by one thread at a time (``CommunicatorPool`` lends instances out).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from pandaharvester.harvestercore import core_utils
from pandaharvester.harvestercore.resource_type_mapper import resource_type_entries

from .auth import AuthManager
from .base_communicator import BaseCommunicator, _logger
from .files_api import FilesApiMixin
from .http_client import CallResult, PandaHttpClient
from .jobs_api import JobsApiMixin
from .redact import Redactor
from .reply_shapes import envelope
from .settings import PandaconSettings, load_settings, warn_no_verify
from .transport import Transport, make_transport

HEARTBEAT_QUIRK_TEXT = "database error"


class PandaCommunicator(JobsApiMixin, FilesApiMixin, BaseCommunicator):
    """Talks to the PanDA server for one Harvester instance."""

    def __init__(self, transport: Transport | None = None, stop_event: threading.Event | None = None) -> None:
        super().__init__()
        settings = load_settings()
        self.verbose = settings.verbose
        self.useInspect = settings.use_inspect
        self.auth_type = settings.auth_type
        self.cert_file = settings.cert_file
        self.key_file = settings.key_file
        self.ca_cert = settings.ca_cert
        self.redactor = Redactor()
        self.auth = AuthManager(
            auth_type=settings.auth_type, cert_file=settings.cert_file, key_file=settings.key_file,
            ca_cert=settings.ca_cert, auth_token=settings.auth_token, auth_origin=settings.auth_origin,
            multihost_auth_config=settings.multihost_auth_config, on_new_secret=self.redactor.add_secret,
            logger=self.make_logger(method_name="__init__"),
        )
        if settings.ca_cert is False:
            for url in dict.fromkeys((settings.server_url, settings.cache_url)):
                warn_no_verify(url)
        self.transport = transport if transport is not None else make_transport(settings.transport)
        self.http = PandaHttpClient(self.transport, self.auth, self.redactor, _logger, load_settings,
                                    verbose=self.verbose, stop_event=stop_event)
        try:
            self.renew_token()
        except Exception:
            pass

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _settings() -> PandaconSettings:
        return load_settings()

    @property
    def harvester_id(self) -> str | None:
        """This instance's ``[master] harvester_id``."""
        return self._settings().harvester_id

    @property
    def auth_token(self) -> str | None:
        """The default bearer token currently in use (None for x509)."""
        return self.auth.for_url(self._settings().server_url).token

    def request_ssl(self, method: str, path: str, data: Any = None, files: dict | None = None,
                    cert: tuple[str, str] | None = None, base_url: str | None = None) -> tuple[bool, Any]:
        """One API call (GET, POST or UPLOAD) with retries: ``(True, reply dict)`` or ``(False, error)``."""
        caller = sys._getframe(1).f_code.co_name if self.useInspect else None
        return self.http.request(method, path, data=data, files=files, cert=cert, base_url=base_url, caller=caller)

    def request_non_idempotent(self, method: str, path: str, data: Any = None) -> CallResult:
        """One call that hands something out (jobs, commands, event ranges), which the server
        cannot recognise when repeated: retried only while the request surely did not reach the
        server; ``maybe_applied`` tells when its reply was lost after the server may have applied it."""
        caller = sys._getframe(1).f_code.co_name if self.useInspect else None
        return self.http.call(method, path, data=data, caller=caller, idempotent=False)

    def _lost_reply(self, tmp_log: Any, path: str, result: CallResult, scope: str, lost: str, action: str) -> str:
        """Log (ERROR, greppable ``LOST_REPLY``) a reply lost after the server may have applied the
        call, with what an operator needs to recover; returns the error text."""
        text = (f"LOST_REPLY {path} harvester_id={self.harvester_id} {scope} window_utc={result.window_text()}: "
                f"the request may have been applied by PanDA but its reply was lost ({result.value}); "
                f"{lost} Not retried: {path} has no idempotency key. {action}")
        return self._fail(tmp_log, text)

    def _fail(self, tmp_log: Any, message: Any) -> str:
        text = self.redactor.text(message if isinstance(message, str) else str(message))
        return core_utils.dump_error_message(tmp_log, text)

    # ------------------------------------------------------------------ credentials
    def force_credential_renewal(self) -> None:
        """Re-read token files at the next request."""
        self.auth.force_renewal()

    def renew_token(self) -> None:
        """Re-read the token files that changed or are due."""
        self.auth.renew_tokens()

    def get_host_specific_auth_config(self, base_url: str) -> tuple:
        """``(auth_type, cert_file, key_file, ca_cert, auth_token)`` for ``base_url``."""
        return self.auth.host_tuple(base_url)

    # ------------------------------------------------------------------ server and instance
    def check_panda(self) -> tuple[bool, Any]:
        """Connectivity test: ``(status, reply or error)``."""
        return self.request_ssl("GET", "system/is_alive", {})

    def is_alive(self, metadata_dictionary: dict) -> tuple[bool, str]:
        """Heartbeat of this instance; datetimes are sent as ``datetime/...`` strings.

        The server answers the very first heartbeat of a new instance with ``success: false``
        ("database error") after creating its row; that one reply is retried once.
        """
        tmp_log = self.make_logger(method_name="is_alive")
        tmp_log.debug("start")
        data = {"harvester_id": self.harvester_id, "data": metadata_dictionary}
        for attempt in (1, 2):
            ok, reply = self.request_ssl("POST", "harvester/heartbeat", data)
            if not ok:
                err = self._fail(tmp_log, reply)
                return False, err
            success, message, _ = envelope(reply)
            if success or attempt == 2 or HEARTBEAT_QUIRK_TEXT not in message.lower():
                break
            tmp_log.debug(f"heartbeat answered {message!r}: retrying once (first heartbeat of the instance)")
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success, "" if success else message

    def get_max_worker_id(self) -> tuple[bool, Any]:
        """``(True, current max workerID)`` or ``(False, message)``; used with ``[db] syncMaxWorkerID``."""
        tmp_log = self.make_logger(method_name="get_max_worker_id")
        ok, reply = self.request_ssl("GET", "harvester/get_current_worker_id", {"harvester_id": self.harvester_id})
        if not ok:
            self._fail(tmp_log, reply)
            return False, None
        success, message, data = envelope(reply)
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success, data if data is not None else message

    # ------------------------------------------------------------------ commands
    def get_commands(self, n_commands: int) -> list[dict]:
        """Up to ``n_commands`` commands for this instance (``[]`` when none or on failure)."""
        tmp_log = self.make_logger(method_name="get_commands")
        tmp_log.debug(f"start retrieving {n_commands} commands")
        data = {"harvester_id": self.harvester_id, "n_commands": n_commands}
        path = "harvester/acquire_commands"
        result = self.request_non_idempotent("POST", path, data)
        if result.maybe_applied:
            self._lost_reply(tmp_log, path, result, f"n_commands={n_commands}",
                             "commands PanDA handed out in that window are not applied here.",
                             "Ask PanDA to send the commands of this harvester_id again.")
            return []
        if not result.ok:
            self._fail(tmp_log, result.value)
            return []
        success, message, commands = envelope(result.value)
        if not success:
            self._fail(tmp_log, message)
            return []
        commands = commands or []
        tmp_log.debug(f"got {len(commands)} commands")
        return commands

    def ack_commands(self, command_ids: list) -> bool:
        """Acknowledge commands; True when PanDA accepted."""
        tmp_log = self.make_logger(method_name="ack_commands")
        tmp_log.debug(f"acknowledging {len(command_ids)} commands (command_ids={command_ids})")
        ok, reply = self.request_ssl("POST", "harvester/acknowledge_commands", {"command_ids": list(command_ids)})
        if not ok:
            self._fail(tmp_log, reply)
            return False
        success, message, _ = envelope(reply)
        if not success:
            self._fail(tmp_log, message)
        return success

    # ------------------------------------------------------------------ workers and monitoring
    def update_workers(self, workspec_list: list) -> tuple[list[bool] | None, str]:
        """Report workers: ``(list of per-worker bools, "OK")`` or ``(None, error)``."""
        tmp_log = self.make_logger(method_name="update_workers")
        workers = [work_spec.convert_to_propagate() for work_spec in workspec_list]
        tmp_log.debug(f"update {len(workers)} workers")
        data = {"harvester_id": self.harvester_id, "workers": workers}
        ok, reply = self.request_ssl("POST", "harvester/update_workers", data)
        if not ok:
            return None, self._fail(tmp_log, reply)
        success, message, ret_list = envelope(reply)
        if not success:
            return None, self._fail(tmp_log, message)
        if not isinstance(ret_list, list) or len(ret_list) != len(workers):
            return None, self._fail(tmp_log, f"PanDA harvester/update_workers replied {str(ret_list)[:200]}: "
                                             f"expected one bool for each of the {len(workers)} workers")
        tmp_log.debug("done with OK")
        return ret_list, "OK"

    def update_worker_stats(self, site_name: str, stats: dict) -> tuple[bool, str]:
        """Report the worker statistics of a queue."""
        tmp_log = self.make_logger(f"siteName={site_name}", method_name="update_worker_stats")
        data = {"harvester_id": self.harvester_id, "panda_queue": site_name,
                "statistics": json.dumps(stats, default=str)}
        tmp_log.debug(f"update stats: {stats}")
        return self._simple_post(tmp_log, "harvester/report_worker_statistics", data)

    def send_dialog_messages(self, dialog_list: list) -> tuple[bool, str]:
        """Send dialog messages (``DiagSpec.convert_to_propagate()`` each)."""
        tmp_log = self.make_logger(method_name="send_dialog_messages")
        dialogs = [diag_spec.convert_to_propagate() for diag_spec in dialog_list]
        tmp_log.debug(f"sending {len(dialogs)} messages")
        return self._simple_post(tmp_log, "harvester/add_dialogs", {"harvester_id": self.harvester_id,
                                                                    "dialogs": dialogs})

    def update_service_metrics(self, service_metrics_list: list) -> tuple[bool, str]:
        """Send service metrics of this instance."""
        tmp_log = self.make_logger(method_name="update_service_metrics")
        return self._simple_post(tmp_log, "harvester/update_service_metrics",
                                 {"harvester_id": self.harvester_id, "metrics": service_metrics_list})

    def _simple_post(self, tmp_log: Any, path: str, data: dict) -> tuple[bool, str]:
        ok, reply = self.request_ssl("POST", path, data)
        if not ok:
            return False, self._fail(tmp_log, reply)
        success, message, _ = envelope(reply)
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success, message if not success else (message or "OK")

    def get_worker_stats_from_panda(self) -> tuple[dict, str]:
        """Worker statistics across instances: ``(stats, "OK")`` or ``({}, error)``."""
        tmp_log = self.make_logger(method_name="get_worker_stats_from_panda")
        ok, reply = self.request_ssl("GET", "harvester/get_worker_statistics", {})
        if not ok:
            return {}, self._fail(tmp_log, reply)
        success, message, stats = envelope(reply)
        if not success:
            return {}, self._fail(tmp_log, message)
        return stats if stats is not None else {}, "OK"

    def get_resource_types(self) -> tuple[Any, str]:
        """Resource type definitions: ``(list, "")`` or ``(None, error)``.

        The real server's ``data`` is a bare list of ``{resource_name, mincore, maxcore,
        minrampercore, maxrampercore}``; a list wrapped as ``{"ResourceTypes": [...]}`` is unwrapped.
        """
        tmp_log = self.make_logger(method_name="get_resource_types")
        ok, reply = self.request_ssl("GET", "metaconfig/get_resource_types", {})
        if not ok:
            return None, self._fail(tmp_log, reply)
        success, message, data = envelope(reply)
        if not success:
            return None, self._fail(tmp_log, message)
        entries = resource_type_entries(data)
        if entries is None:
            return None, self._fail(tmp_log, f"unexpected data in reply (not a list of resource types): "
                                             f"{str(data)[:200]}")
        return entries, ""

    def get_job_stats(self) -> tuple[Any, str]:
        """Active job statistics per site: ``(stats, "OK")`` or ``({}, error)``."""
        return self._get_stats("statistics/active_job_stats_by_site", "get_job_stats")

    def get_job_stats_new(self) -> tuple[Any, str]:
        """Detailed active job statistics per site: ``(stats, "OK")`` or ``({}, error)``."""
        return self._get_stats("statistics/active_job_detailed_stats_by_site", "get_job_stats_new")

    def _get_stats(self, path: str, method_name: str) -> tuple[Any, str]:
        tmp_log = self.make_logger(method_name=method_name)
        ok, reply = self.request_ssl("GET", path, {})
        if not ok:
            return {}, self._fail(tmp_log, reply)
        success, message, stats = envelope(reply)
        if not success:
            return {}, self._fail(tmp_log, message or "FAILED")
        return stats if stats is not None else {}, "OK"

    # ------------------------------------------------------------------ credentials from PanDA
    def get_proxy(self, voms_role: str, cert: tuple[str, str] | None = None) -> tuple[str | None, str]:
        """An X.509 proxy for ``voms_role``: ``(proxy, "")`` or ``(None, error)``. Never logged."""
        tmp_log = self.make_logger(method_name="get_proxy")
        ok, reply = self.request_ssl("GET", "creds/get_proxy", {"role": voms_role}, cert)
        if not ok:
            return None, self._fail(tmp_log, reply)
        success, message, data = envelope(reply)
        if not success:
            return None, self._fail(tmp_log, message)
        proxy = _first_key(data, "user_proxy", "userProxy", "proxy")
        if proxy is None:
            return None, self._fail(tmp_log, "no proxy in the reply")
        self.redactor.add_secret(proxy)
        tmp_log.debug(f"got a proxy of {len(proxy)} chars")
        return proxy, ""

    def get_token_key(self, client_name: str) -> tuple[str | None, str]:
        """The token key of ``client_name``: ``(key, "")`` or ``(None, error)``. Never logged."""
        tmp_log = self.make_logger(method_name="get_token_key")
        ok, reply = self.request_ssl("GET", "creds/get_token_key", {"client_name": client_name})
        if not ok:
            return None, self._fail(tmp_log, reply)
        success, message, data = envelope(reply)
        if not success:
            return None, self._fail(tmp_log, message)
        key = _first_key(data, "tokenKey", "token_key")
        if key is None:
            return None, self._fail(tmp_log, "no token key in the reply")
        self.redactor.add_secret(key)
        tmp_log.debug("got the token key")
        return key, ""

    def get_key_pair(self, public_key_name: str, private_key_name: str) -> tuple[dict | None, str | None]:
        """``({"public_key", "private_key"}, None)`` or ``(None, error)``. Never logged."""
        tmp_log = self.make_logger(method_name="get_key_pair")
        tmp_log.debug(f"start for {public_key_name}:{private_key_name}")
        data = {"public_key_name": public_key_name, "private_key_name": private_key_name}
        ok, reply = self.request_ssl("GET", "creds/get_key_pair", data)
        if not ok:
            return None, self._fail(tmp_log, reply)
        success, message, key_pair = envelope(reply)
        if not success:
            return None, self._fail(tmp_log, message)
        if isinstance(key_pair, dict):
            for name in ("private_key", "privateKey", "public_key", "publicKey"):
                self.redactor.add_secret(key_pair.get(name))
        tmp_log.debug("got the key pair")
        return key_pair, None


def _first_key(data: Any, *keys: str) -> Any:
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        for key in keys:
            if data.get(key) is not None:
                return data[key]
    return None
