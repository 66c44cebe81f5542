"""CommandManager agent: instance heartbeat and the PanDA command channel.

At start it tells PanDA the instance is alive, with startTime/sw_version/commit_stamp and, for
``runMode == "slave"`` queues, the commands it wants to receive (sent again each cycle until
PanDA takes it). Each cycle, under process lock "commandmanager" (one process of the instance per
``sleepTime``): a heartbeat every ``[commandmanager] heartbeatInterval`` s (600 as in the
original), then ``get_commands`` → CommandSpec → ``store_commands``; processed commands are
acknowledged (``ack_commands``) and removed. A full bulk of commands runs the next cycle at once.
The start-up message and the heartbeats are the instance's, not a process's: they go under
process lock "commandmanager_heartbeat:<harvester_id>" (taken for ``heartbeatInterval``), so several processes
of one instance (``[master] nProcesses``) send one start-up message and one heartbeat per interval.
"""

from __future__ import annotations

import datetime
import socket
from typing import Any

from pandaharvester import commit_timestamp, panda_pkg_info
from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("command_manager")

DEFAULT_HEARTBEAT_INTERVAL = 600
HEARTBEAT_LOCK = "commandmanager_heartbeat"


class CommandManager(AgentBase):
    """Receives commands from PanDA and acknowledges the processed ones."""

    cfg_section = "commandmanager"
    log_name = "command_manager"
    default_sleep_time = 5
    randomize_sleep = False

    def __init__(self, communicator: Any, queue_config_mapper: Any, single_mode: bool = False) -> None:
        super().__init__(single_mode, queue_config_mapper=queue_config_mapper, communicator=communicator)
        self.nodeName = socket.gethostname()
        self.lastHeartbeat: datetime.datetime | None = None
        self.startupData: dict[str, Any] | None = None  # start-up heartbeat not yet taken by PanDA

    def bulk_size(self) -> int:
        return int(self.cfg("commands_bulk_size", 20))

    # ------------------------------------------------------------ start-up
    def startup_commands(self) -> list[dict[str, Any]]:
        """Commands to subscribe to for slave queues: one worker-stats report per site, N workers per queue."""
        from pandaharvester.harvestercore.command_spec import CommandSpec

        sites: set[str] = set()
        commands = []
        for queue_config in self.queueConfigMapper.get_active_queues().values():
            if queue_config is None or getattr(queue_config, "runMode", None) != "slave":
                continue
            item = {"computingSite": queue_config.siteName, "resourceType": queue_config.resourceType}
            if queue_config.siteName not in sites:
                commands.append({"command": CommandSpec.COM_reportWorkerStats, **item})
                sites.add(queue_config.siteName)
            commands.append({"command": CommandSpec.COM_setNWorkers, **item})
        return commands

    def heartbeat_lock(self) -> str:
        """The heartbeat's process lock, one per instance (instances may share a DB)."""
        return f"{HEARTBEAT_LOCK}:{self.cfg_value('master', 'harvester_id', '')}"

    def heartbeat_interval(self) -> float:
        return float(self.cfg("heartbeatInterval", DEFAULT_HEARTBEAT_INTERVAL))

    def bootstrap(self) -> None:
        """Tell PanDA the instance started (and which commands slave queues need); another
        process of the instance that did so already (it holds the heartbeat lock) is enough."""
        main_log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="bootstrap")
        if not self.acquire_process_lock("commandmanager", self.sleep_time()):
            return
        if not self.acquire_process_lock(self.heartbeat_lock(), self.heartbeat_interval()):
            main_log.debug("start-up message sent by another process of this instance")
            self.release_process_lock("commandmanager")
            return
        data: dict[str, Any] = {"startTime": core_utils.naive_utcnow(),
                                "sw_version": panda_pkg_info.release_version,
                                "commit_stamp": commit_timestamp.timestamp}
        commands = self.startup_commands()
        if commands:
            main_log.debug(f"sending {len(commands)} commands to receive")
            data["commands"] = commands
        self.startupData = data
        self.send_heartbeat(main_log)
        self.release_process_lock("commandmanager")  # the first cycle (at once) takes it again

    # ------------------------------------------------------------ the cycle
    def run_cycle(self) -> bool:
        main_log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="run")
        self.send_heartbeat(main_log)  # under its own lock: not only when this process gets the commands
        if not self.acquire_process_lock("commandmanager", self.sleep_time()) and not self.singleMode:
            return False
        bulk_size = self.bulk_size()
        commands = self.communicator.get_commands(bulk_size) or []
        main_log.debug(f"got {len(commands)} commands (bulk size: {bulk_size})")
        command_specs = self.convert_to_command_specs(commands)
        if command_specs:
            self.db_proxy.store_commands(command_specs)
            main_log.debug(f"cached {len(command_specs)} commands in internal DB")
        self.acknowledge(main_log, bulk_size)
        self.db_proxy.clean_processed_commands()
        if len(commands) < bulk_size:
            return False
        # a full bulk: the next cycle runs at once, so it must be able to take the lock again (held
        # for a sleep time otherwise: PanDA's commands, e.g. queue depths, came 20 per sleep time)
        self.release_process_lock("commandmanager")
        return True

    def send_heartbeat(self, main_log: Any) -> None:
        """The start-up heartbeat until PanDA took it (every cycle: its command subscriptions
        must not be lost), then ``is_alive({})`` every ``heartbeatInterval`` seconds, by the
        process of the instance that takes the heartbeat lock."""
        if self.startupData is not None:
            ok, _message = self._is_alive(self.startupData, main_log)
            if ok:
                self.startupData = None
                self.lastHeartbeat = core_utils.naive_utcnow()
            return
        interval = self.heartbeat_interval()
        now = core_utils.naive_utcnow()
        if self.lastHeartbeat is not None and now - self.lastHeartbeat < datetime.timedelta(seconds=interval):
            return
        if not self.acquire_process_lock(self.heartbeat_lock(), interval):
            return  # sent by another process of this instance within the interval
        self.lastHeartbeat = now
        self._is_alive({}, main_log)

    def _is_alive(self, data: dict[str, Any], main_log: Any) -> tuple[bool, Any]:
        result = self.communicator.is_alive(data)
        ok, message = result if isinstance(result, tuple) else (bool(result), "")
        if ok:
            main_log.debug("heartbeat sent")
        else:
            main_log.error(f"heartbeat failed : {message}")
        return ok, message

    def acknowledge(self, main_log: Any, bulk_size: int) -> int:
        """Acknowledge processed commands to PanDA and forget them; returns how many."""
        command_ids = self.db_proxy.get_commands_ack() or []
        n_acked = 0
        for shard in core_utils.create_shards(command_ids, bulk_size):
            if self.communicator.ack_commands(shard):
                self.db_proxy.clean_commands_by_id(shard)
                n_acked += len(shard)
                main_log.debug(f"acknowledged {len(shard)} commands to panda server")
            else:
                main_log.error(f"failed to acknowledge commands {shard}: retried next cycle")
        return n_acked

    def convert_to_command_specs(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Command dicts from PanDA → CommandSpecs with their receiver agent (unknown ones dropped)."""
        from pandaharvester.harvestercore.command_spec import CommandSpec

        specs = []
        for command in commands:
            spec = CommandSpec()
            spec.convert_command_json(command)
            for prefix, receiver in CommandSpec.receiver_map.items():
                if spec.command and spec.command.startswith(prefix):
                    spec.receiver = receiver
                    break
            if spec.receiver is not None:
                specs.append(spec)
            else:
                _logger.warning(f"command {spec.command!r} (id={getattr(spec, 'command_id', None)}) "
                                "has no receiver agent: ignored")
        return specs
