"""CredManager agent: keeps proxies/tokens valid with the credmanager plugins.

Plugins come from the cfg (``[credmanager] moduleName/className/inCertFile (or certFile)/
outCertFile/voms`` parallel lists, plus ``pluginConfigs``) and from each queue's
``credmanagers`` list. Each cycle, under process lock "credmanager": ``check_credential()``,
and ``renew_credential()`` when that says the credential is not valid.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("cred_manager")

_PLACEHOLDER = re.compile(r"\$\{([a-zA-Z\d_.]+)\}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str) and "," in value and "\n" not in value:
        return [item.strip() for item in value.split(",") if item.strip()]
    return [value]


class CredManager(AgentBase):
    """Checks and renews credentials with the configured plugins."""

    cfg_section = "credmanager"
    log_name = "cred_manager"
    default_sleep_time = 1800
    randomize_sleep = False

    def __init__(self, queue_config_mapper: Any, single_mode: bool = False) -> None:
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)
        self.exe_cores: list[Any] = []  # instance-wide plugins (from the cfg)
        self.queue_exe_cores: list[Any] = []  # per-queue plugins (from the queue config)
        self.get_cores_from_harvester_config()
        self.update_cores_from_queue_config()

    # ------------------------------------------------------------ plugin set-up
    def get_cores_from_harvester_config(self) -> None:
        """Instantiate the plugins described by the ``[credmanager]`` section."""
        module_names = _as_list(self.cfg("moduleName", None))
        class_names = _as_list(self.cfg("className", None))
        in_certs = _as_list(self.cfg("inCertFile", None) or self.cfg("certFile", None))
        out_certs = _as_list(self.cfg("outCertFile", None))
        if not out_certs:
            out_certs = _as_list(self.cfg_value("pandacon", "cert_file", None))
        vomses = _as_list(self.cfg("voms", None))
        for module_name, class_name, in_cert, out_cert, voms in zip(module_names, class_names, in_certs,
                                                                    out_certs, vomses):
            params = {"module": module_name, "name": class_name, "inCertFile": in_cert,
                      "outCertFile": out_cert, "voms": voms}
            self._add_core(self.exe_cores, params)
        plugin_configs = self.cfg("pluginConfigs", None) or []
        for plugin_config in plugin_configs:
            try:
                setups = plugin_config["configs"].items()
            except Exception:
                _logger.error(f"[credmanager] pluginConfigs entry {plugin_config!r} is not "
                              "{{module, name, configs: {{setup_name: {{...}}}}}}: skipped")
                continue
            for setup_name, setup_map in setups:
                params = {"module": plugin_config.get("module"), "name": plugin_config.get("name"),
                          "setup_name": setup_name}
                params.update(setup_map)
                self._add_core(self.exe_cores, params)

    def update_cores_from_queue_config(self) -> None:
        """(Re)build the per-queue plugins from each online queue's ``credmanagers`` list."""
        cores: list[Any] = []
        for queue_name, queue_config in self.queue_config_mapper.get_all_queues().items():
            setups = getattr(queue_config, "credmanagers", None)
            if getattr(queue_config, "queueStatus", None) == "offline" or not isinstance(setups, list):
                continue
            for setup in setups:
                params: dict[str, Any] = {"setup_name": queue_name, "queueName": queue_name}
                for key, value in setup.items():
                    params[key] = self._expand(value, queue_name, queue_config)
                self._add_core(cores, params)
        self.queue_exe_cores = cores

    @staticmethod
    def _expand(value: Any, queue_name: str, queue_config: Any) -> Any:
        """Replace ``${harvesterID}``, ``${queueName}``, ``${common.X}`` in a string value."""
        if not isinstance(value, str) or "$" not in value:
            return value

        def repl(match: re.Match) -> str:
            name = match.group(1)
            if name == "harvesterID":
                return str(CredManager.cfg_value("master", "harvester_id"))
            if name == "queueName":
                return queue_name
            if name.startswith("common."):
                common = getattr(queue_config, "common", None) or {}
                if name[7:] in common:
                    return str(common[name[7:]])
            return match.group(0)

        return _PLACEHOLDER.sub(repl, value)

    def _add_core(self, cores: list[Any], params: dict[str, Any]) -> None:
        try:
            core = self.pluginFactory.get_plugin(params, role="credmanager")
        except Exception:
            where = {key: params.get(key) for key in ("module", "name", "setup_name")}
            _logger.error(f"failed to make credmanager plugin {where}: skipped")
            core_utils.dump_error_message(_logger)
            return
        if core is not None:
            cores.append(core)

    @staticmethod
    def core_name(core: Any) -> str:
        """``<Class> <setup_name>`` (or ``<Class> <inCertFile> <outCertFile>``) for log lines."""
        name = getattr(core, "setup_name", None)
        if name is None:
            name = f"{getattr(core, 'inCertFile', None)} {getattr(core, 'outCertFile', None)}"
        return f"{type(core).__name__} {name}"

    # ------------------------------------------------------------ the cycle
    def run_cycle(self) -> bool:
        self.update_cores_from_queue_config()
        self.execute()
        return False

    def execute(self) -> None:
        """Check every credential and renew those that are not valid (under lock "credmanager")."""
        if not self.acquire_process_lock("credmanager", self.sleep_time()):
            return
        for core in itertools.chain(self.exe_cores, self.queue_exe_cores):
            tmp_log = self.make_logger(_logger, self.core_name(core), method_name="execute")
            ok, valid = self.call_plugin(tmp_log, core, "check_credential", role="credmanager")
            if not ok:
                tmp_log.error(f"check failed : {valid}")
                continue
            if valid:
                tmp_log.debug("valid")
                continue
            tmp_log.debug("invalid : renew credential")
            ok, result = self.call_plugin(tmp_log, core, "renew_credential", role="credmanager")
            if not ok:
                tmp_log.error(f"renewal failed : {result}")
                continue
            status, message = result
            if status:
                tmp_log.debug("renewed")
            else:
                tmp_log.error(f"failed : {message}")

    def execute_monit(self) -> dict[str, Any]:
        """``{outCertFile: remaining lifetime}`` of the plugins that report it (ServiceMonitor)."""
        self.update_cores_from_queue_config()
        metrics: dict[str, Any] = {}
        for core in itertools.chain(self.exe_cores, self.queue_exe_cores):
            tmp_log = self.make_logger(_logger, self.core_name(core), method_name="execute_monit")
            ok, lifetime = self.call_plugin(tmp_log, core, "check_credential_lifetime", default=None,
                                            role="credmanager")
            if ok and lifetime is not None:
                metrics[getattr(core, "outCertFile", self.core_name(core))] = lifetime
        return metrics
