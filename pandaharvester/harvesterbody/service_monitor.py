"""ServiceMonitor agent: resource usage of the Harvester service, stored as service metrics.

Every ``[service_monitor] sleepTime`` s: RSS (MiB), memory % and CPU % (normalised by the
number of CPUs) of the master process plus its children, ``volume_<name>_pc`` for each of
``disk_volumes`` and the credentials' remaining lifetime (``cert_lifetime``), stored with
``insert_service_metrics``; the propagator sends them to PanDA. Under process lock
"service_monitor:<harvester_id>" (taken for ``sleepTime``): with several processes of one instance (``[master]
nProcesses``), one of them samples per interval; the master's pid file names the process whose
tree is measured, so the sample covers every process of the instance.
"""

from __future__ import annotations

import os
from typing import Any

import psutil

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("service_monitor")


def round_floats(value: Any) -> Any:
    """Floats rounded to 2 decimals; anything else unchanged."""
    return round(value, 2) if isinstance(value, float) else value


class ServiceMonitor(AgentBase):
    """Samples the service's memory/CPU/disk usage."""

    cfg_section = "service_monitor"
    log_name = "service_monitor"
    default_sleep_time = 300
    randomize_sleep = False

    def __init__(self, pid_file: str | None, single_mode: bool = False, queue_config_mapper: Any = None) -> None:
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper)
        self.pid_file = pid_file if pid_file is not None else self.cfg("pidfile", None)
        self.pid = self.get_master_pid()
        self.master_process = psutil.Process(self.pid)
        self.children: list[psutil.Process] = self.master_process.children(recursive=True)
        self.cpu_count = psutil.cpu_count() or 1
        self.cred_manager: Any = None

    def get_master_pid(self) -> int:
        """The master's pid from the pid file; this process when the file cannot be read."""
        try:
            with open(self.pid_file) as stream:
                return int(stream.readline())
        except Exception:
            _logger.warning(f"could not read pid file {self.pid_file!r}: monitoring this process")
            return os.getpid()

    def refresh_children_list(self, children: list[psutil.Process]) -> list[psutil.Process]:
        """Keep the Process objects already known (their CPU counters), add the new ones."""
        known = {child.pid: child for child in self.children}
        self.children = [known.get(child.pid, child) for child in children]
        return self.children

    def get_memory_n_cpu(self) -> tuple[float | None, float | None, float | None]:
        """(RSS MiB, memory %, CPU %) of the master and all its children."""
        try:
            rss = self.master_process.memory_info().rss
            memory_pc = self.master_process.memory_percent()
            cpu_pc = self.master_process.cpu_percent()
            for child in self.refresh_children_list(self.master_process.children(recursive=True)):
                try:
                    rss += child.memory_info().rss
                    memory_pc += child.memory_percent()
                    cpu_pc += child.cpu_percent()
                except psutil.Error:
                    continue
            return rss / float(2 ** 20), memory_pc, cpu_pc / self.cpu_count
        except Exception:
            core_utils.dump_error_message(_logger)
            return None, None, None

    @staticmethod
    def volume_use(volume_name: str) -> float | None:
        """Used percentage of the file system at ``/<volume_name>`` (or an absolute path)."""
        path = volume_name if os.path.isabs(volume_name) else "/" + volume_name
        try:
            return float(psutil.disk_usage(path).percent)
        except Exception as exc:
            _logger.error(f"could not get the disk usage of volume {volume_name} ({path}): {exc}")
            return None

    def cert_validities(self) -> dict[str, Any]:
        """Remaining lifetime of each credential, from the CredManager's plugins."""
        try:
            if self.cred_manager is None:
                from pandaharvester.harvesterbody.cred_manager import CredManager

                if self.queue_config_mapper is None:
                    from pandaharvester.harvestercore.queue_config_mapper import QueueConfigMapper

                    self.queue_config_mapper = QueueConfigMapper()
                self.cred_manager = CredManager(self.queue_config_mapper, single_mode=True)
            return self.cred_manager.execute_monit()
        except Exception:
            core_utils.dump_error_message(_logger)
            return {}

    def collect_metrics(self) -> dict[str, Any]:
        """One sample of all metrics."""
        metrics: dict[str, Any] = {}
        rss_mib, memory_pc, cpu_pc = self.get_memory_n_cpu()
        metrics["rss_mib"] = round_floats(rss_mib)
        metrics["memory_pc"] = round_floats(memory_pc)
        metrics["cpu_pc"] = round_floats(cpu_pc)
        _logger.debug(f"Memory usage: {metrics['rss_mib']} MiB/{metrics['memory_pc']}%, CPU usage: {metrics['cpu_pc']}")
        volumes = self.cfg("disk_volumes", "") or ""
        volumes = volumes if isinstance(volumes, list) else str(volumes).split(",")
        for volume in (v.strip() for v in volumes if v.strip()):
            metrics[f"volume_{volume}_pc"] = round_floats(self.volume_use(volume))
        metrics["cert_lifetime"] = {cert: round(value) for cert, value in self.cert_validities().items()}
        return metrics

    def run_cycle(self) -> bool:
        from pandaharvester.harvestercore.service_metrics_spec import ServiceMetricSpec

        lock = f"service_monitor:{self.cfg_value('master', 'harvester_id', '')}"  # metrics are per instance
        if not self.acquire_process_lock(lock, self.sleep_time()) and not self.singleMode:
            return False
        metrics = self.collect_metrics()
        self.db_proxy.insert_service_metrics(ServiceMetricSpec(metrics))
        return False
