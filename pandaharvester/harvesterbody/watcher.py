"""Watcher agent: raises the alarm when Harvester's logging stalls or slows down.

For each file of ``[watcher] logFileNameList`` (under ``[master] logDir``) it reads the time
stamp of the last line and of the line ``nMessages`` before it. Logging is *stalled* when the
last line is older than ``maxStalled`` s, *slow* when those ``nMessages`` lines took more than
``maxDuration`` s, *erroring* when more than ``maxErrors`` of them are ERROR/CRITICAL lines
(0 = not checked). Then the ``actions`` run: ``email`` (SMTP, when configured), ``kill``
(SIGUSR2, then SIGKILL after a grace period) or ``terminate`` (SIGTERM). Checks are spaced by
``checkInterval`` s across processes with a file lock. The stalled and slow checks count on a
steady flow of lines, i.e. DEBUG lines: for a ``panda-<name>.log`` whose logger is above DEBUG
(the default level is INFO) they are skipped, with one WARNING saying how to turn them on.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import signal
import smtplib
import socket
import time
from email.mime.text import MIMEText
from typing import Any, Callable

from pandaharvester.harvesterbody.agent_base import AgentBase
from pandaharvester.harvestercore import core_utils

_logger = core_utils.setup_logger("watcher")

TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
KILL_GRACE_SECONDS = 60
# "<date> <time> <logger>: ERROR ..." (or CRITICAL), the format of every Harvester log line
_ERROR_LINE = re.compile(r"^\S+ \S+ \S+: (ERROR|CRITICAL) ")


def read_tail(path: str, n_lines: int, block: int = 65536) -> list[str]:
    """The last ``n_lines`` lines of a file, read backwards from its end."""
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        end = stream.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= n_lines:
            start = max(0, end - block)
            stream.seek(start)
            data = stream.read(end - start) + data
            end = start
    lines = data.decode(errors="replace").splitlines()
    return [line for line in lines if line.strip()][-n_lines:]


def line_time(line: str) -> datetime.datetime | None:
    """Time stamp at the start of a log line (None if it has none)."""
    try:
        return datetime.datetime.strptime(line[:23], TIME_FORMAT)
    except ValueError:
        return None


def log_now() -> datetime.datetime:
    """Now, in the same clock as the log lines' time stamps (local time unless UTC logging)."""
    if logging.Formatter.converter is time.gmtime:
        return core_utils.naive_utcnow()
    return datetime.datetime.now()


class Watcher(AgentBase):
    """Watches the log files and takes the configured actions when logging stalls."""

    cfg_section = "watcher"
    log_name = "watcher"
    randomize_sleep = False

    def __init__(self, single_mode: bool = False, signal_sender: Callable[[int], None] | None = None) -> None:
        super().__init__(single_mode)
        self.startTime = core_utils.naive_utcnow()
        self.signal_sender = signal_sender or self.signal_own_process
        self._quiet_logs_warned: set[str] = set()

    # ------------------------------------------------------------ configuration
    @staticmethod
    def log_dir() -> str:
        from pandaharvester.harvestercore import log_utils

        return log_utils.log_dir() or str(Watcher.cfg_value("master", "logDir", None) or ".")

    def lock_file_name(self) -> str:
        return os.path.join(os.environ.get("PANDA_LOCK_DIR", self.log_dir()), "watcher.lock")

    def actions(self) -> list[str]:
        return [a.strip() for a in str(self.cfg("actions", "") or "").split(",") if a.strip()]

    # ------------------------------------------------------------ the cycle
    def run_cycle(self) -> bool:
        self.execute()
        return False

    def execute(self) -> list[str]:
        """Check the log files once (if due); returns the problems found."""
        check_interval = float(self.cfg("checkInterval", 180))
        if not self.singleMode and core_utils.naive_utcnow() - self.startTime < datetime.timedelta(seconds=check_interval):
            return []
        main_log = self.make_logger(_logger, f"id={self.get_pid()}", method_name="execute")
        try:
            with core_utils.get_file_lock(self.lock_file_name(), check_interval):
                problems = self.check_logs(main_log)
        except IOError:
            main_log.debug("skip as locked by another thread or too early to check")
            return []
        if problems:
            self.take_actions(problems, main_log)
        else:
            main_log.debug("no action needed")
        return problems

    def check_logs(self, main_log: Any) -> list[str]:
        """The stalled/slow findings over all watched log files."""
        names = self.cfg("logFileNameList", "panda-db_proxy.log") or "panda-db_proxy.log"
        names = names if isinstance(names, list) else str(names).split(",")
        n_messages = int(self.cfg("nMessages", 1000))
        max_stalled = float(self.cfg("maxStalled", 0))
        max_duration = float(self.cfg("maxDuration", 0))
        max_errors = int(self.cfg("maxErrors", 0) or 0)
        problems = []
        for name in (n.strip() for n in names if n.strip()):
            path = os.path.join(self.log_dir(), name)
            if not os.path.exists(path):
                continue
            lines = read_tail(path, n_messages)
            last_time = line_time(lines[-1]) if lines else None
            first_time = line_time(lines[0]) if lines else None
            duration = (last_time - first_time).total_seconds() if last_time and first_time else None
            main_log.debug(f"log={name} : last message at {last_time}; {len(lines)} messages took {duration} sec")
            timed = (max_stalled > 0 or max_duration > 0) and not self.too_quiet_to_time(name, main_log)
            if timed and max_stalled > 0 and last_time is not None and \
                    (log_now() - last_time).total_seconds() > max_stalled:
                problems.append(f"last log message is too old in {name}. seems to be stalled")
            elif timed and max_duration > 0 and duration is not None and duration > max_duration:
                problems.append(f"slow message generation in {name}. seems to be a performance issue")
            n_errors = sum(1 for line in lines if _ERROR_LINE.match(line))
            if max_errors > 0 and n_errors > max_errors:
                problems.append(f"{n_errors} error messages in the last {len(lines)} messages of {name} "
                                f"(more than [watcher] maxErrors={max_errors})")
        for problem in problems:
            main_log.warning(problem)
        return problems

    def too_quiet_to_time(self, name: str, main_log: Any) -> bool:
        """Whether ``name`` is the log of a logger of this process above DEBUG (its silence says
        nothing); warned once per log."""
        from pandaharvester.harvestercore import log_utils

        match = re.fullmatch(r"panda-(.+)\.log", name)
        level = log_utils.known_level(match.group(1)) if match else None
        if level is None or level <= logging.DEBUG:
            return False
        if name not in self._quiet_logs_warned:
            self._quiet_logs_warned.add(name)
            main_log.warning(f"log={name}: [watcher] maxStalled and maxDuration are not checked: the logger logs at "
                             f"{logging.getLevelName(level)} and they count on DEBUG lines; set [log_level] "
                             f"{match.group(1)} = DEBUG to check them")
        return True

    # ------------------------------------------------------------ actions
    def take_actions(self, problems: list[str], main_log: Any) -> None:
        actions = self.actions()
        if "email" in actions:
            try:
                self.send_email(problems, main_log)
            except Exception:
                core_utils.dump_error_message(main_log)
        if "kill" in actions:
            main_log.warning("sending SIGUSR2")
            self.signal_sender(signal.SIGUSR2)
            time.sleep(KILL_GRACE_SECONDS)
            main_log.warning("sending SIGKILL")
            self.signal_sender(signal.SIGKILL)
        elif "terminate" in actions:
            main_log.warning("sending SIGTERM")
            self.signal_sender(signal.SIGTERM)

    @staticmethod
    def signal_own_process(sig: int) -> None:
        """Signal the harvester: its process group when it leads one (daemon), else itself."""
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), sig)
        else:
            os.kill(os.getpid(), sig)

    def send_email(self, problems: list[str], main_log: Any) -> None:
        """Mail the alarm to ``[watcher] mailTo`` (skipped when no server/recipient is set)."""
        server_name = self.cfg("mailServer", "")
        mail_to = str(self.cfg("mailTo", "") or "")
        if not server_name or not mail_to:
            main_log.debug("email action skipped: [watcher] mailServer/mailTo not set")
            return
        user = password = None
        if self.cfg("mailUser", "") and self.cfg("mailPassword", ""):
            env_name = self.cfg("passphraseEnv", "HARVESTER_WATCHER_PASSPHRASE")
            decrypt = getattr(core_utils, "decrypt_string", None)
            if env_name not in os.environ or decrypt is None:
                main_log.error(f"cannot decrypt the mail credentials: set {env_name} in etc/sysconfig/panda_harvester")
                return
            user = decrypt(os.environ[env_name], self.cfg("mailUser"))
            password = decrypt(os.environ[env_name], self.cfg("mailPassword"))
        body = (f"harvester {self.cfg_value('master', 'harvester_id')} is having a problem on {socket.getfqdn()} "
                f"at {core_utils.naive_utcnow()} (UTC)\n" + "\n".join(problems))
        message = MIMEText(body)
        message["Subject"] = "Harvester Alarm"
        message["From"] = self.cfg("mailFrom", "")
        message["To"] = mail_to
        main_log.debug(f"sending email to {mail_to}")
        server = smtplib.SMTP(server_name, int(self.cfg("mailPort", 25)), timeout=60)
        try:
            if self.cfg("mailUseSSL", False) is True:
                server.starttls()
            if user is not None and password is not None:
                server.login(user, password)
            server.sendmail(message["From"], [a.strip() for a in mail_to.split(",")], message.as_string())
        finally:
            server.quit()
