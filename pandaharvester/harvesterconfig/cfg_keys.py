"""The table of panda_harvester.cfg keys: every key the code reads, and the original's keys it does not.

One line per key (see :class:`~pandaharvester.harvesterconfig.schema.Key`):

- ``_k(section, name, kind, default, meaning, required=True)`` for a key the code reads.
  ``default`` is what the code uses when the key is not set; a required key (read without a
  default) has none, and its ``default`` is the value the error line suggests.
- ``_unread(section, name, kind, note, turns_on)`` for a key of the original this Harvester
  does not read: the template marks it ``# not read by this Harvester: <why>``, and a value for
  which ``turns_on(value)`` is true gets the WARNING ``note`` at start.

``tests/test_config_template.py`` checks the table against the template and the code (every
key read is here, every unread key is marked in the template and read nowhere).
"""

from __future__ import annotations

from typing import Any, Callable

from pandaharvester.harvesterconfig.schema import (
    LEVEL, AnyOf, Bool, Choice, Directory, Identifier, Int, Json, Key, Kind, Lines, Number, SecretFile, Text, is_set, is_true,
)

# durations are capped (about 30 years) so that every one is a valid thread-wait timeout
# (threading.TIMEOUT_MAX) and a valid datetime offset from now
SECONDS = Number(min=0, max=10 ** 9, unit="seconds")
MINUTES = Number(min=0, max=10 ** 7, unit="minutes")
HOURS = Number(min=0, max=2 * 10 ** 5, unit="hours")
# counts fit the DBs' 64-bit integers many times over; threads and connections are made at start
COUNT = Int(min=1, max=10 ** 9)  # a per-cycle or per-request maximum: 0 would mean "always a full batch"
COUNT0 = Int(min=0, max=10 ** 9)  # 0 is meaningful (no limit, or none)
THREADS = Int(min=0, max=1000, unit="number of threads, 0 for none")
POOL = Int(min=1, max=1000, unit="connections made at start")
TEXT = Text()
BOOL = Bool()
LINES = Lines()
PORT = Int(min=1, max=65535)
ANY = Kind()


def _sqlite_engine(values: dict[str, Any]) -> bool:
    """[db] uses SQLite (the file is needed then only)."""
    return str(values.get("engine") or "sqlite").strip().lower() in ("sqlite", "sqlite3")


_NO_PLUGIN_CACHE = "the monitor plugin cache is not implemented in this Harvester: plugins are called every check"
_NO_POST_ZIP = ("two-stage zipping (async_zip_output then post_zip_output) is not implemented in this Harvester: "
                "outputs are zipped in one step with zip_output")
_NO_APFMON = "APFMon reporting is not implemented in this Harvester: nothing is sent to [apfmon] base_url"
_NO_FILE_SYNCER = "the file syncer agent is not implemented in this Harvester: no file is synced"


def _k(section: str, name: str, kind: Kind, default: Any = None, meaning: str = "", **kw: Any) -> Key:
    return Key(section, name, kind, default, meaning, **kw)


def _unread(section: str, name: str, kind: Kind, note: str, turns_on: Callable[[Any], bool] | None = None) -> Key:
    return Key(section, name, kind, None, "", implemented=False, turns_on=turns_on, note=note)


def _agent(section: str, sleep: float, threads: bool = True) -> list[Key]:
    """``sleepTime`` (and ``nThreads``) of an agent section."""
    keys = [_k(section, "sleepTime", SECONDS, sleep, "seconds between cycles")]
    if threads:
        keys.append(_k(section, "nThreads", THREADS, 1, "threads of this agent"))
    return keys


KEYS: tuple[Key, ...] = (
    # ---------------------------------------------------------------- master
    _k("master", "uname", TEXT, None, "user the daemon runs as when started by root"),
    _k("master", "gname", TEXT, None, "group the daemon runs as when started by root"),
    _unread("master", "loggername", TEXT, "each agent logs to its own file panda-<name>.log"),
    _k("master", "harvester_id", TEXT, None, "the id of this instance as registered in the PanDA server, "
       "at most 50 characters, no spaces", required=True),
    _k("master", "logDir", Directory(), None, "directory of the log files"),
    _unread("master", "debugger_port", PORT, "there is no remote debugger: SIGUSR1 dumps the thread stacks "
            "to the master log"),
    _k("master", "dynamic_plugin_change", BOOL, True, "whether plugins may change when the queue config changes"),
    _k("master", "stopTimeout", SECONDS, 300, "seconds the agents get at stop to finish their cycle"),
    _k("master", "releaseDeadLocksAtStart", BOOL, True, "release at start the row locks held by dead processes of "
       "this host (a crash), instead of waiting for each agent's lockInterval"),
    _k("master", "pluginCallTimeout", SECONDS, 3600, "seconds a plugin call may last before the agent abandons it "
       "and goes on (0: no limit); the queue config's pluginCallTimeout and a plugin's callTimeout override it"),
    _k("master", "nProcesses", Int(min=1, max=64), 1, "processes of this instance sharing the work through the "
       "DB's row locks (1: agents run in the master process itself)"),
    # ---------------------------------------------------------------- db
    _k("db", "verbose", BOOL, False, "log every DB call"),
    _unread("db", "useInspect", BOOL, "verbose DB messages do not name the calling function"),
    _k("db", "nConnections", POOL, 10, "DB connections of the process"),
    _k("db", "engine", Choice(options=("sqlite", "mariadb", "mysql")), "sqlite", "database engine"),
    _k("db", "database_filename", TEXT, None, "the SQLite file, on a local disk", required=True,
       required_when=_sqlite_engine),
    _k("db", "busyTimeout", SECONDS, 30, "seconds a SQLite connection waits for a lock; on MariaDB the lock "
       "wait timeout and how long deadlocks are retried"),
    _k("db", "useMySQLdb", BOOL, False, "use mysqlclient (MySQLdb) instead of PyMySQL for MariaDB/MySQL"),
    _k("db", "user", TEXT, "harvester", "MariaDB/MySQL user"),
    _k("db", "password", TEXT, "", "MariaDB/MySQL password (or password_file)"),
    _k("db", "password_file", SecretFile(), None, "file holding the MariaDB/MySQL password on its first line, "
       "mode 0600"),
    _k("db", "schema", TEXT, "HARVESTER", "MariaDB/MySQL database (schema) name"),
    _k("db", "host", TEXT, "localhost", "MariaDB/MySQL server host"),
    _k("db", "port", PORT, 3306, "MariaDB/MySQL server port"),
    _k("db", "reconnectTimeout", SECONDS, 300, "seconds to keep reconnecting to MariaDB/MySQL before giving up"),
    _k("db", "tablePrefix", Identifier(), "", "prefix of this instance's table names, so that several instances "
       "(each its own harvester_id) share one database; the sequence table is shared"),
    _k("db", "syncMaxWorkerID", BOOL, False, "take the largest workerID known to PanDA at start"),
    _k("db", "jobSecretsDir", Directory(), None, "directory (made 0700) of PanDA's job secrets, one 0600 file a job, "
       "kept out of the DB; default $PANDA_HOME/var/lib/harvester/job_secrets"),
    # ---------------------------------------------------------------- fifo
    _k("fifo", "fifoModule", TEXT, "pandaharvester.harvesterfifo.sqlite_fifo", "module of the FIFO backend"),
    _k("fifo", "fifoClass", TEXT, "SqliteFifo", "class of the FIFO backend (SqliteFifo, MysqlFifo, RedisFifo)"),
    _k("fifo", "database_filename", TEXT, None, "SqliteFifo: file of each FIFO ($(TITLE) is the FIFO's title)"),
    _k("fifo", "db_host", TEXT, "127.0.0.1", "MysqlFifo: server host"),
    _k("fifo", "db_port", PORT, 3306, "MysqlFifo: server port"),
    _k("fifo", "db_user", TEXT, "harvester", "MysqlFifo: user"),
    _k("fifo", "db_password", TEXT, "", "MysqlFifo: password (never logged)"),
    _k("fifo", "db_schema", TEXT, "HARVESTER", "MysqlFifo: database holding the <title>_FIFO tables"),
    _k("fifo", "reconnectTimeout", SECONDS, 300, "MysqlFifo: seconds to retry a lost connection"),
    _k("fifo", "redisHost", TEXT, "127.0.0.1", "RedisFifo: server host"),
    _k("fifo", "redisPort", PORT, 6379, "RedisFifo: server port"),
    _k("fifo", "redisDB", COUNT0, 0, "RedisFifo: database number"),
    _k("fifo", "redisPassword", TEXT, None, "RedisFifo: password (never logged)"),
    # ---------------------------------------------------------------- communicator
    _k("communicator", "moduleName", TEXT, "pandaharvester.harvestercommunicator.panda_communicator",
       "module of the communicator"),
    _k("communicator", "className", TEXT, "PandaCommunicator", "class of the communicator"),
    _k("communicator", "nConnections", POOL, 5, "communicator instances"),
    # ---------------------------------------------------------------- pandacon
    _k("pandacon", "timeout", SECONDS, 180, "timeout of one HTTP request"),
    _k("pandacon", "transport", Choice(options=("requests", "pycurl")), "requests", "HTTP client"),
    _k("pandacon", "nConnections", POOL, 5, "connections kept per PanDA host"),
    _k("pandacon", "maxRetries", COUNT0, 3, "retries of a request failing with a connection error or HTTP 5xx"),
    _k("pandacon", "retryBackoff", SECONDS, 1, "base of the exponential back-off between retries"),
    _k("pandacon", "auth_type", TEXT, "x509", "authentication: oidc (token), else certificates"),
    _k("pandacon", "ca_cert", ANY, None, "CA bundle verifying the server (True: system bundle; False: no check, a WARNING each start)"),
    _k("pandacon", "cert_file", TEXT, None, "client certificate (x509)"),
    _k("pandacon", "key_file", TEXT, None, "client key (x509)"),
    _k("pandacon", "auth_token", TEXT, None, "token, or file:/path/to/token (oidc)"),
    _k("pandacon", "auth_origin", TEXT, None, "origin (VO) sent with the token"),
    _k("pandacon", "allow_credentials_over_http", BOOL, False,
       "let a token go to an http:// URL (refused otherwise; a WARNING each start when allowed)"),
    _k("pandacon", "multihost_auth_config", TEXT, None, "JSON file of per-host authentication"),
    _k("pandacon", "server_api_url", TEXT, None, "PanDA server API over http"),
    _k("pandacon", "server_api_url_ssl", TEXT, None, "PanDA server API over https"),
    _k("pandacon", "cache_api_url_ssl", TEXT, None, "PanDA cache API over https"),
    _k("pandacon", "pandaURL", TEXT, None, "legacy server URL over http"),
    _k("pandacon", "pandaURLSSL", TEXT, None, "legacy server URL over https"),
    _k("pandacon", "pandaCacheURL_W", TEXT, None, "legacy cache URL for uploads"),
    _k("pandacon", "pandaCacheURL_R", TEXT, None, "legacy cache URL for downloads (log URLs of workers)"),
    _k("pandacon", "iddsURL", TEXT, None, "iDDS server"),
    _k("pandacon", "verbose", BOOL, False, "log every request"),
    _k("pandacon", "useInspect", BOOL, False, "name the calling function in verbose messages"),
    _k("pandacon", "getEventsChunkSize", COUNT, 5120, "event ranges asked for in one request"),
    # ---------------------------------------------------------------- qconf
    _k("qconf", "configFile", TEXT, "panda_queueconfig.json", "queue config file"),
    _k("qconf", "configURL", TEXT, None, "URL of the remote queue config"),
    _k("qconf", "configFromCacher", BOOL, False, "take queues from the cache entry queues_config_file"),
    _k("qconf", "queueList", LINES, ["ALL"], "active queues: names, ALL and/or DYNAMIC"),
    _k("qconf", "resolverModule", TEXT, None, "module of the queue resolver"),
    _k("qconf", "resolverClass", TEXT, None, "class of the queue resolver"),
    _k("qconf", "resolverConfig", Json(types=(dict,)), None, "resolver configuration"),
    _k("qconf", "autoBlacklist", BOOL, False, "blacklist queues the resolver reports offline"),
    _k("qconf", "pilotVersion", TEXT, None, "only use queues of this pilot version"),
    _k("qconf", "updateInterval", SECONDS, 600, "seconds between reloads of the queue config"),
    _k("qconf", "checkInterval", SECONDS, 5, "seconds between checks whether the queue config was reloaded"),
    _k("qconf", "defaultTemplateQueueName", TEXT, None, "template queue of DYNAMIC queues"),
    # ---------------------------------------------------------------- commandmanager
    _k("commandmanager", "commands_bulk_size", COUNT, 20, "commands fetched in one request"),
    _k("commandmanager", "heartbeatInterval", SECONDS, 600, "seconds between two heartbeats of this instance"),
    *_agent("commandmanager", 5, threads=False),
    # ---------------------------------------------------------------- jobfetcher
    *_agent("jobfetcher", 60),
    _k("jobfetcher", "nQueues", COUNT, 5, "queues served in one cycle", required=True),
    _k("jobfetcher", "maxJobs", COUNT0, 500, "jobs fetched at most in one cycle", required=True),
    _k("jobfetcher", "lookupTime", SECONDS, 60, "seconds before the same queue is looked at again", required=True),
    # ---------------------------------------------------------------- propagator
    *_agent("propagator", 60),
    _k("propagator", "maxJobs", COUNT, 100, "jobs updated in one cycle", required=True),
    _k("propagator", "nJobsInBulk", COUNT, 100, "jobs per update request", required=True),
    _k("propagator", "maxWorkers", COUNT, 100, "workers updated in one cycle", required=True),
    _k("propagator", "nWorkersInBulk", COUNT, 100, "workers per update request", required=True),
    _k("propagator", "maxDialogs", COUNT0, 50, "dialog messages sent in one cycle"),
    _k("propagator", "minMessageLevel", LEVEL, "WARNING", "lowest level of the messages sent to PanDA"),
    _k("propagator", "lockInterval", SECONDS, 600, "seconds a job stays locked by one thread", required=True),
    _k("propagator", "updateInterval", SECONDS, 1800, "seconds between two heartbeats of a job", required=True),
    # ---------------------------------------------------------------- preparator
    *_agent("preparator", 60),
    _k("preparator", "maxJobsToCheck", COUNT, 100, "jobs checked in one cycle", required=True),
    _k("preparator", "maxJobsToTrigger", COUNT, 100, "jobs triggered in one cycle", required=True),
    _k("preparator", "maxFilesPerJobToCheck", COUNT0, 0, "files per job checked in one cycle (0: no limit)"),
    _k("preparator", "maxFilesPerJobToPrepare", COUNT0, 0, "files per job prepared in one cycle (0: no limit)"),
    _k("preparator", "lockInterval", SECONDS, 600, "seconds a job stays locked by one thread", required=True),
    _k("preparator", "checkInterval", SECONDS, 180, "seconds between two checks of a job", required=True),
    _k("preparator", "triggerInterval", SECONDS, 180, "seconds between two triggers of a job", required=True),
    # ---------------------------------------------------------------- submitter
    *_agent("submitter", 60),
    _k("submitter", "nQueues", COUNT, 3, "queues tried in one cycle", required=True),
    _k("submitter", "lookupTime", SECONDS, 60, "seconds before the same queue is looked at again", required=True),
    _k("submitter", "queueLockInterval", SECONDS, 300, "seconds a queue stays locked by one thread", required=True),
    _k("submitter", "lockInterval", SECONDS, 600, "seconds a job stays locked by one thread", required=True),
    _k("submitter", "checkInterval", SECONDS, 60, "seconds before a new worker is first checked", required=True),
    _k("submitter", "minSubmissionInterval", SECONDS, 0, "minimum seconds between two submissions to a queue",
       required=True),
    _k("submitter", "maxNewWorkers", COUNT0, None, "new workers per queue at most in one cycle"),
    _k("submitter", "respectSleepTime", BOOL, False, "keep sleepTime even when a cycle found more to do"),
    _k("submitter", "activateWorkerFactor", AnyOf(kinds=(Choice(options=("auto",)), Number(min=0))), 1.0,
       "share of the queue's activated jobs this instance covers"),
    _k("submitter", "noPilotsWhenNoActiveJobs", BOOL, False, "no pilots to a queue without activated jobs"),
    # ---------------------------------------------------------------- monitor
    *_agent("monitor", 60),
    _k("monitor", "maxWorkers", COUNT, 500, "workers checked in one cycle", required=True),
    _k("monitor", "lockInterval", SECONDS, 600, "seconds a worker stays locked by one thread", required=True),
    _k("monitor", "checkInterval", SECONDS, 300, "seconds between two checks of a worker", required=True),
    _k("monitor", "checkTimeout", SECONDS, None, "seconds after which a worker that cannot be checked is given up"),
    _k("monitor", "workerQueueTimeLimit", SECONDS, 172800, "seconds a worker may stay queued before it is killed"),
    _k("monitor", "postProcessTimeout", MINUTES, 0, "minutes to retry the post-processing of a finished worker"),
    _k("monitor", "fifoEnable", BOOL, False, "check workers from the monitor FIFO (the DB every sleepTime)"),
    _k("monitor", "fifoModule", TEXT, None, "FIFO backend module of the monitor FIFOs (default [fifo] fifoModule)"),
    _k("monitor", "fifoClass", TEXT, None, "FIFO backend class of the monitor FIFOs (default [fifo] fifoClass)"),
    _k("monitor", "fifoSleepTimeMilli", Int(min=0, unit="milliseconds"), 5000, "milliseconds between FIFO cycles"),
    _k("monitor", "fifoCheckInterval", SECONDS, None, "seconds between two FIFO checks of a worker "
                                                      "(default checkInterval)"),
    _k("monitor", "fifoCheckDuration", SECONDS, 30, "seconds one FIFO cycle may last"),
    _k("monitor", "fifoForceEnqueueInterval", SECONDS, 3600, "seconds unchecked after which a worker the DB "
                                                             "cycle checks is put in the FIFO"),
    _k("monitor", "fifoMaxWorkersToPopulate", Int(min=1, max=2 ** 62), 2 ** 32,
       "workers put in the FIFO at most when it is filled"),
    _k("monitor", "fifoMaxWorkersPerChunk", COUNT, 500, "workers per FIFO object"),
    _k("monitor", "fifoMaxPreemptInterval", SECONDS, 60, "seconds a post-processing worker may jump the queue"),
    _k("monitor", "fifoProtectiveDequeue", BOOL, True, "keep a dequeued object until its check is written"),
    _unread("monitor", "pluginCacheEnable", BOOL, _NO_PLUGIN_CACHE, is_true),
    _unread("monitor", "pluginCacheRefreshInterval", SECONDS, _NO_PLUGIN_CACHE),
    _k("monitor", "eventBasedEnable", BOOL, False, "check first the workers the event-based plugins report"),
    _k("monitor", "eventBasedPlugins", Json(types=(list,)), None, "event-based plugins ({module, name, ...})"),
    _k("monitor", "eventBasedCheckInterval", SECONDS, 300, "seconds between two queries of the plugins"),
    _k("monitor", "eventBasedTimeWindow", SECONDS, 450, "seconds of updates a plugin query covers"),
    _k("monitor", "eventBasedCheckMaxEvents", COUNT, 500, "events handled in one cycle"),
    _k("monitor", "eventBasedEventLifetime", SECONDS, 1800, "seconds after which an event is dropped"),
    _k("monitor", "eventBasedRemoveMaxEvents", COUNT, 2000, "expired events removed in one cycle"),
    # ---------------------------------------------------------------- credmanager
    _k("credmanager", "moduleName", LINES, None, "module of each credential manager"),
    _k("credmanager", "className", LINES, None, "class of each credential manager"),
    _k("credmanager", "inCertFile", LINES, None, "original certificate of each credential"),
    _k("credmanager", "certFile", LINES, None, "older name of inCertFile"),
    _k("credmanager", "outCertFile", LINES, None, "credential produced by each manager"),
    _k("credmanager", "voms", LINES, None, "VOMS attribute of each credential"),
    _k("credmanager", "pluginConfigs", Json(types=(list,)), None, "credential managers configured in JSON"),
    *_agent("credmanager", 1800, threads=False),
    # ---------------------------------------------------------------- stager (zip keys: [zipper] wins when present)
    *_agent("stager", 60),
    _k("stager", "maxJobsToCheck", COUNT, 100, "jobs checked in one cycle", required=True),
    _k("stager", "maxJobsToTrigger", COUNT, 100, "jobs triggered in one cycle", required=True),
    _k("stager", "maxFilesPerJobToCheck", COUNT0, 0, "files per job checked in one cycle (0: no limit)"),
    _k("stager", "maxFilesPerJobToTrigger", COUNT0, 0, "files per job triggered in one cycle (0: no limit)"),
    _k("stager", "lockInterval", SECONDS, 600, "seconds a job stays locked by one thread", required=True),
    _k("stager", "checkInterval", SECONDS, 180, "seconds between two checks of a job", required=True),
    _k("stager", "triggerInterval", SECONDS, 180, "seconds between two triggers of a job", required=True),
    _k("stager", "maxJobsToZip", COUNT, None, "jobs zipped in one cycle (default maxJobsToTrigger)"),
    _k("stager", "maxFilesPerJobToZip", COUNT0, 0, "files per job zipped in one cycle (0: no limit)"),
    _k("stager", "zipInterval", SECONDS, None, "seconds between two zip attempts (default triggerInterval)"),
    _k("stager", "nThreadsForZip", COUNT, None, "threads making zip files (default: the CPUs)"),
    _unread("stager", "usePostZipping", BOOL, _NO_POST_ZIP, is_true),
    # ---------------------------------------------------------------- zipper
    _k("zipper", "maxJobsToZip", COUNT, None, "jobs zipped in one cycle (default [stager] maxJobsToTrigger)"),
    _k("zipper", "maxFilesPerJobToZip", COUNT0, 0, "files per job zipped in one cycle (0: no limit)"),
    _k("zipper", "lockInterval", SECONDS, None, "seconds a zipped job stays locked (default [stager] lockInterval)"),
    _k("zipper", "zipInterval", SECONDS, None, "seconds between two zip attempts (default [stager] triggerInterval)"),
    _k("zipper", "nThreadsForZip", COUNT, None, "threads making zip files (default: the CPUs)"),
    _unread("zipper", "usePostZipping", BOOL, _NO_POST_ZIP, is_true),
    # ---------------------------------------------------------------- eventfeeder
    *_agent("eventfeeder", 60),
    _k("eventfeeder", "maxWorkers", COUNT, 500, "workers served in one cycle", required=True),
    _k("eventfeeder", "lockInterval", SECONDS, 600, "seconds a worker stays locked by one thread", required=True),
    # ---------------------------------------------------------------- cacher
    _k("cacher", "data", LINES, [], "cache entries main_key|sub_key|source[|dump_file]"),
    _k("cacher", "refreshInterval", MINUTES, 10, "minutes before an entry is fetched again", required=True),
    *_agent("cacher", 60, threads=False),
    # ---------------------------------------------------------------- payload_interaction
    *(_k("payload_interaction", name, TEXT, default, "file name of the shared-file messenger")
      for name, default in (
          ("workerAttributesFile", "worker_attributes.json"), ("jobReportFile", "jobReport.json"),
          ("eventStatusDumpJsonFile", "event_status.dump.json"), ("eventStatusDumpXmlFile", "_event_status.dump"),
          ("jobRequestFile", "worker_requestjob.json"), ("jobSpecFile", "pandaJobData.out"),
          ("eventRequestFile", "worker_requestevents.json"), ("eventRangesFile", "JobsEventRanges.json"),
          ("updateEventsFile", "worker_updateevents.json"), ("xmlPoolCatalogFile", "PoolFileCatalog_H.xml"),
          ("pandaIDsFile", "worker_pandaids.json"), ("killWorkerFile", "kill_worker.json"),
          ("heartbeatFile", "worker_heartbeat.json"), ("taskWorkBaseDir", "/tmp/workdir"),
          ("taskWorkStateFile", "state.json"))),
    # ---------------------------------------------------------------- frontend (no front-end in this Harvester)
    *(_unread("frontend", name, kind, "the HTTP front-end is not implemented in this Harvester")
      for name, kind in (("portNumber", PORT), ("nThreads", COUNT), ("verbose", BOOL), ("type", TEXT),
                         ("authEnable", BOOL), ("secretFile", TEXT), ("verifyToken", BOOL))),
    # ---------------------------------------------------------------- sweeper
    *_agent("sweeper", 60),
    _k("sweeper", "maxWorkers", COUNT, 500, "workers handled in one cycle", required=True),
    _k("sweeper", "checkInterval", SECONDS, 180, "seconds between two kill attempts of a worker", required=True),
    _k("sweeper", "keepFinished", HOURS, 24, "hours to keep finished workers", required=True),
    _k("sweeper", "keepFailed", HOURS, 72, "hours to keep failed workers", required=True),
    _k("sweeper", "keepCancelled", HOURS, 72, "hours to keep cancelled workers", required=True),
    _k("sweeper", "keepMissed", HOURS, 24, "hours to keep missed workers"),
    _k("sweeper", "keepPending", HOURS, 24, "hours to keep pending workers"),
    _k("sweeper", "diskCleanUpInterval", HOURS, None, "hours between disk clean-ups"),
    _k("sweeper", "diskHighWatermark", LINES, None, "directory|limit_in_GB entries, comma-separated"),
    # ---------------------------------------------------------------- watcher
    _k("watcher", "logFileNameList", LINES, "panda-db_proxy.log", "log files watched, comma-separated"),
    _k("watcher", "maxStalled", SECONDS, 0, "act when the last message is older (0: never)"),
    _k("watcher", "nMessages", COUNT, 1000, "messages looked at"),
    _k("watcher", "maxDuration", SECONDS, 0, "act when nMessages took longer (0: never)"),
    _k("watcher", "maxErrors", COUNT0, 0, "act above this many errors in nMessages (0: never)"),
    _k("watcher", "checkInterval", SECONDS, 180, "seconds between checks"),
    *_agent("watcher", 60, threads=False),
    _k("watcher", "actions", TEXT, "", "actions, comma-separated: email, kill, terminate"),
    _k("watcher", "passphraseEnv", TEXT, "HARVESTER_WATCHER_PASSPHRASE", "variable holding the mail pass phrase"),
    _k("watcher", "mailServer", TEXT, "", "SMTP server"),
    _k("watcher", "mailPort", PORT, 25, "SMTP port"),
    _k("watcher", "mailUseSSL", BOOL, False, "STARTTLS"),
    _k("watcher", "mailUser", TEXT, "", "encrypted SMTP user"),
    _k("watcher", "mailPassword", TEXT, "", "encrypted SMTP password"),
    _k("watcher", "mailFrom", TEXT, "", "sender"),
    _k("watcher", "mailTo", TEXT, "", "recipients, comma-separated"),
    # ---------------------------------------------------------------- apfmon
    _unread("apfmon", "active", BOOL, _NO_APFMON, is_true),
    _unread("apfmon", "base_url", TEXT, _NO_APFMON),
    _unread("apfmon", "worker_timeout", SECONDS, _NO_APFMON),
    # ---------------------------------------------------------------- service_monitor
    _k("service_monitor", "active", BOOL, False, "run the service monitor"),
    *_agent("service_monitor", 300, threads=False),
    _k("service_monitor", "disk_volumes", TEXT, "", "volumes whose usage is reported, comma-separated"),
    _k("service_monitor", "pidfile", TEXT, None, "pid file of the master"),
    # ---------------------------------------------------------------- googlecloud (GoogleCloud plugins: not available)
    *(_unread("googlecloud", name, TEXT, "the GoogleCloud plugins are not available in this Harvester")
      for name in ("zone", "project", "service_account_file", "user_data_file", "image", "harvester_frontend")),
    # ---------------------------------------------------------------- file_syncer
    _unread("file_syncer", "sleepTime", SECONDS, _NO_FILE_SYNCER),
    _unread("file_syncer", "pluginConfigs", Json(types=(list,)), _NO_FILE_SYNCER, is_set),
    # ---------------------------------------------------------------- log_level
    _k("log_level", "*", LEVEL, None, "level of the logger of that name (panda-<name>.log)"),
)
