"""The import surface the original's plugin modules rely on.

IMPORTS lists, per plugin or helper module of the original Harvester (HSF/harvester, read with
the search tool), every ``from pandaharvester.X import Y`` / ``import pandaharvester.X`` it makes,
as ``X:Y`` with X relative to ``pandaharvester`` (the package itself is written ``pandaharvester``);
``[needs:...]`` names the third-party packages it also imports, for information. Each import must
resolve on our package, except those of NOT_PROVIDED, which name what is still missing and why;
a test keeps that list true, so whoever adds one of them moves it out.
"""

from __future__ import annotations

import importlib
import re

import pytest

IMPORTS = """
harvestercredmanager.arcproxy_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.base_cred_manager: harvestercore.plugin_base:PluginBase
harvestercredmanager.dummy_cred_manager: harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.grid_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.iam_token_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager harvestermisc.info_utils:PandaQueuesDict
    harvestermisc.token_utils:IssuerBroker harvestermisc.token_utils:WLCG_scopes
    harvestermisc.token_utils:endpoint_to_filename
harvestercredmanager.iam_token_cred_manager_globus_compute: harvestercore:core_utils
    harvestercredmanager.iam_token_cred_manager:IamTokenCredManager
    harvestermisc.globus_compute_token_sync:GlobusComputeTokenReplicator
    harvestermisc.token_utils:endpoint_to_filename [needs:globus_compute_sdk]
harvestercredmanager.k8s_secret_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager harvestermisc.info_utils_k8s:PandaQueuesDictK8s
    harvestermisc.k8s_utils:k8s_Client [needs:kubernetes]
harvestercredmanager.no_voms_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.proxy_cache_cred_manager: harvestercore.communicator_pool:CommunicatorPool
    harvestercore:core_utils harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.superfacility_cred_manager: harvestercore:core_utils
    harvestercredmanager.base_cred_manager:BaseCredManager
harvestercredmanager.token_key_cred_manager: harvestercore.communicator_pool:CommunicatorPool
    harvestercore:core_utils harvestercredmanager.base_cred_manager:BaseCredManager
harvesterextractor.analysis_extractor: harvesterextractor.base_extractor:BaseExtractor
harvesterextractor.aux_extractor: harvesterextractor.base_extractor:BaseExtractor
harvesterextractor.base_extractor: harvestercore.file_spec:FileSpec harvestercore.plugin_base:PluginBase
harvesterfifo.mysql_fifo: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils
harvesterfifo.sqlite_fifo: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
harvesterfilesyncer.git_file_syncer: harvestercore:core_utils harvesterfilesyncer.base_file_syncer:BaseFileSyncer
harvestermessenger.act_messenger: harvesterconfig:harvester_config harvestercore.work_spec:WorkSpec
    harvestercore:core_utils harvestermessenger.base_messenger:BaseMessenger [needs:act]
harvestermessenger.apache_messenger: harvesterconfig:harvester_config harvestercore:core_utils
    harvestermessenger:http_server_messenger harvestermisc.frontend_utils:HarvesterToken
harvestermessenger.http_server_messenger: harvesterconfig:harvester_config harvestercore.db_proxy_pool:DBProxyPool
    harvestercore:core_utils harvestermessenger:shared_file_messenger
harvestermessenger.k8s_messenger: harvestercore:core_utils harvestermessenger.base_messenger:BaseMessenger
    harvestermisc.info_utils_k8s:PandaQueuesDictK8s harvestermisc.k8s_utils:k8s_Client [needs:kubernetes]
harvestermessenger.shared_file_messenger: harvesterconfig:harvester_config harvestercore.work_spec:WorkSpec
    harvestercore:core_utils harvestermessenger.base_messenger:BaseMessenger [needs:future]
harvestermiddleware.direct_ssh_herder: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    [needs:six,pexpect]
harvestermiddleware.rpc_herder: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermiddleware.ssh_tunnel_pool:sshTunnelPool [needs:rpyc]
harvestermiddleware.ssh_master_pool: harvestercore:core_utils [needs:six,pexpect]
harvestermiddleware.ssh_tunnel_pool: harvestercore:core_utils [needs:six,pexpect]
harvestermisc.apfmon: harvesterconfig:harvester_config harvestercore.work_spec:WorkSpec harvestercore:core_utils
    harvestermisc.info_utils:PandaQueuesDict pandaharvester:panda_pkg_info [needs:requests]
harvestermisc.frontend_utils: harvesterconfig:harvester_config [needs:jwt]
harvestermisc.htcondor_utils: harvesterconfig:harvester_config harvestercore.core_utils:SingletonWithID
    harvestercore.fifos:SpecialFIFOBase harvestercore:core_utils [needs:six]
harvestermisc.info_utils_k8s: harvestermisc.info_utils:PandaQueuesDict
harvestermisc.k8s_utils: harvesterconfig:harvester_config harvestercore:core_utils
    harvestermisc.info_utils_k8s:PandaQueuesDictK8s [needs:yaml,kubernetes]
harvestermisc.selfcheck: commit_timestamp:timestamp panda_pkg_info:release_version [needs:psutil]
harvestermonitor.act_monitor: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore.work_spec:WorkSpec
    harvestercore.worker_errors:WorkerErrors harvestercore:core_utils [needs:act]
harvestermonitor.cobalt_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.dummy_mcore_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.dummy_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.gitlab_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils harvestermisc.gitlab_utils:get_job_params [needs:requests]
harvestermonitor.globus_compute_monitor: harvesterconfig:harvester_config harvestercore.db_proxy_pool:DBProxyPool
    harvestercore.plugin_base:PluginBase harvestercore.plugin_factory:PluginFactory
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore.work_spec:WorkSpec harvestercore:core_utils
    [needs:globus_compute_sdk]
harvestermonitor.globus_compute_slurm_monitor: harvestercore.plugin_base:PluginBase
    harvestercore.work_spec:WorkSpec harvestercore:core_utils [needs:globus_compute_sdk,globus_sdk]
harvestermonitor.htcondor_monitor: harvesterconfig:harvester_config harvestercore.pilot_errors:PilotErrors
    harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec harvestercore.worker_errors:WorkerErrors
    harvestercore:core_utils harvestermisc.htcondor_utils:CondorJobManage
    harvestermisc.htcondor_utils:CondorJobQuery harvestermisc.htcondor_utils:condor_job_id_from_workspec
    harvestermisc.htcondor_utils:get_host_batchid_map harvestermonitor.monitor_common:get_payload_errstr_from_ec
    [needs:six]
harvestermonitor.k8s_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore.worker_errors:WorkerErrors harvestercore:core_utils
    harvestermisc.info_utils_k8s:PandaQueuesDictK8s harvestermisc.k8s_utils:k8s_Client
    harvestermonitor.monitor_common:get_payload_errstr_from_ec [needs:kubernetes]
harvestermonitor.lsf_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.pbs_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.saga_monitor: harvestercore.plugin_base:PluginBase harvestercore.plugin_factory:PluginFactory
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils
    harvestersubmitter.saga_submitter:SAGASubmitter [needs:radical.utils,saga]
harvestermonitor.slurm_bulk_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.slurm_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.slurm_squeue_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestermonitor.superfacility_monitor: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils harvestermisc.superfacility_utils:SuperfacilityClient [needs:requests]
harvesterpreparator.analysis_aux_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils [needs:requests]
harvesterpreparator.aux_preparator: harvestercore:core_utils
    harvesterpreparator.analysis_aux_preparator:AnalysisAuxPreparator [needs:requests]
harvesterpreparator.dummy_bulk_preparator: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils [needs:future]
harvesterpreparator.dummy_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils [needs:future]
harvesterpreparator.go_bulk_preparator: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils harvestermover:mover_utils
    [needs:globus_sdk,future]
harvesterpreparator.go_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermisc:globus_utils harvestermover:mover_utils [needs:globus_sdk,future]
harvesterpreparator.gridftp_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils
harvesterpreparator.pilotmover_mt_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils [needs:pilot,future]
harvesterpreparator.pilotmover_mt_preparator_kari: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils [needs:pilot]
harvesterpreparator.pilotmover_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils [needs:pilot]
harvesterpreparator.rse_direct_preparator: harvestercore.plugin_base:PluginBase harvestermover:mover_utils
    [needs:future]
harvesterpreparator.rucio_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils [needs:future]
harvesterpreparator.xrdcp_preparator: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermover:mover_utils
harvesterstager.act_stager: harvesterconfig:harvester_config harvestercore.file_spec:FileSpec
    harvestercore.work_spec:WorkSpec harvestercore.worker_errors:WorkerErrors harvestercore:core_utils
    harvesterstager.base_stager:BaseStager [needs:act]
harvesterstager.base_stager: harvesterzipper.base_zipper:BaseZipper
harvesterstager.dummy_bulk_stager: harvestercore:core_utils harvesterstager.base_stager:BaseStager
harvesterstager.dummy_stager: harvestercore:core_utils harvesterstager.base_stager:BaseStager
harvesterstager.fts_stager: harvesterconfig:harvester_config harvestercore:core_utils
    harvesterstager.base_stager:BaseStager [needs:requests]
harvesterstager.go_bulk_stager: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils harvestermisc:globus_utils
    harvestermover:mover_utils harvesterstager.base_stager:BaseStager [needs:globus_sdk]
harvesterstager.go_rucio_stager: harvesterconfig:harvester_config
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils harvestermover:mover_utils
    harvesterstager.go_bulk_stager:GlobusBulkStager harvesterstager:go_bulk_stager [needs:rucio,globus_sdk]
harvesterstager.go_stager: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils harvestermisc:globus_utils harvestermover:mover_utils [needs:globus_sdk]
harvesterstager.gridftp_stager: harvestercore:core_utils harvestermover:mover_utils
    harvesterstager.base_stager:BaseStager
harvesterstager.rse_direct_stager: harvestercore:core_utils harvesterstager.base_stager:BaseStager
harvesterstager.rucio_rse_direct_stager: harvestercore:core_utils
    harvesterstager.yoda_rucio_rse_direct_stager:YodaRseDirectStager harvesterstager:yoda_rucio_rse_direct_stager
    [needs:rucio]
harvesterstager.rucio_stager: harvestercore:core_utils harvestermover:mover_utils
    harvesterstager.base_stager:BaseStager [needs:rucio,future]
harvesterstager.rucio_stager_hpc: harvestercore:core_utils harvesterstager.base_stager:BaseStager
harvesterstager.rucio_stager_hpc_minikui: harvestercore:core_utils harvesterstager.base_stager:BaseStager
harvesterstager.xrdcp_stager: harvestercore:core_utils harvestermover:mover_utils
    harvesterstager.base_stager:BaseStager
harvesterstager.yoda_rse_direct_stager: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils harvestermover:mover_utils
    harvesterstager.base_stager:BaseStager [needs:future]
harvesterstager.yoda_rucio_rse_direct_stager: harvesterconfig:harvester_config
    harvestercore.plugin_base:PluginBase harvestercore.queue_config_mapper:QueueConfigMapper
    harvestercore:core_utils harvestermover:mover_utils harvesterstager.base_stager:BaseStager
    [needs:rucio,future]
harvestersubmitter.act_submitter: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils [needs:arc,act]
harvestersubmitter.cobalt_submitter: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersubmitter.dummy_mcore_submitter: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestersubmitter.dummy_singleton_submitter: harvestercore:core_utils
    harvestersubmitter.dummy_submitter:DummySubmitter
harvestersubmitter.dummy_submitter: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils
harvestersubmitter.gitlab_submitter: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestermisc.gitlab_utils:store_job_params [needs:requests]
harvestersubmitter.globus_compute_slurm_submitter: harvesterconfig:harvester_config
    harvestercore.plugin_base:PluginBase harvestercore.plugin_factory:PluginFactory
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils [needs:yaml,globus_compute_sdk]
harvestersubmitter.globus_compute_submitter: harvestercore.plugin_base:PluginBase
    harvestercore.plugin_factory:PluginFactory harvestercore.queue_config_mapper:QueueConfigMapper
    harvestercore:core_utils [needs:globus_compute_sdk]
harvestersubmitter.htcondor_submitter: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore.resource_type_mapper:ResourceTypeMapper
    harvestercore:core_utils harvestermessenger.base_messenger:BaseMessenger
    harvestermisc.htcondor_utils:CondorJobSubmit harvestermisc.htcondor_utils:get_job_id_tuple_from_batchid
    harvestermisc.info_utils:PandaQueuesDict harvestermisc.token_utils:endpoint_to_filename
    harvestersubmitter:submitter_common
harvestersubmitter.k8s_submitter: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils
    harvestermisc.info_utils_k8s:PandaQueuesDictK8s harvestermisc.k8s_utils:k8s_Client
    harvestersubmitter:submitter_common [needs:kubernetes]
harvestersubmitter.lsf_submitter: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersubmitter.pbs_submitter: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersubmitter.saga_submitter: harvestercore.plugin_base:PluginBase harvestercore.work_spec:WorkSpec
    harvestercore:core_utils [needs:radical.utils,saga]
harvestersubmitter.slurm_submitter: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils [needs:six]
harvestersubmitter.slurm_submitter_jinja: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    [needs:jinja2,six]
harvestersubmitter.slurm_submitter_rubin: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore.resource_type_mapper:ResourceTypeMapper harvestercore:core_utils
    harvestermisc.info_utils:PandaQueuesDict harvestersubmitter:submitter_common
harvestersubmitter.superfacility_submitter: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils harvestermisc.superfacility_utils:SuperfacilityClient [needs:requests]
harvestersweeper.act_sweeper: harvestercore.plugin_base:PluginBase harvestercore:core_utils [needs:act]
harvestersweeper.base_sweeper: harvestercore.plugin_base:PluginBase
harvestersweeper.cobalt_sweeper: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersweeper.dummy_sweeper: harvestersweeper.base_sweeper:BaseSweeper
harvestersweeper.gitlab_sweeper: harvestercore:core_utils harvestermisc.gitlab_utils:get_job_params
    harvestersweeper.base_sweeper:BaseSweeper [needs:requests]
harvestersweeper.htcondor_sweeper: harvestercore:core_utils harvestermisc.htcondor_utils:CondorJobManage
    harvestermisc.htcondor_utils:_runShell harvestermisc.htcondor_utils:condor_job_id_from_workspec
    harvestermisc.htcondor_utils:get_host_batchid_map harvestersweeper.base_sweeper:BaseSweeper
    [needs:six]
harvestersweeper.k8s_sweeper: harvestercore:core_utils harvestermisc.info_utils_k8s:PandaQueuesDictK8s
    harvestermisc.k8s_utils:k8s_Client harvestersweeper.base_sweeper:BaseSweeper [needs:kubernetes]
harvestersweeper.lsf_sweeper: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersweeper.pbs_sweeper: harvestercore.plugin_base:PluginBase harvestercore:core_utils
harvestersweeper.saga_sweeper: harvestercore.plugin_base:PluginBase harvestercore:core_utils
    harvestersubmitter.saga_submitter:SAGASubmitter [needs:saga]
harvestersweeper.slurm_sweeper: harvestercore:core_utils harvestersweeper.base_sweeper:BaseSweeper
harvestersweeper.superfacility_sweeper: harvestercore:core_utils
    harvestermisc.superfacility_utils:SuperfacilityClient harvestersweeper.base_sweeper:BaseSweeper
    [needs:requests]
harvesterthrottler.simple_throttler: harvestercore.db_proxy_pool:DBProxyPool harvestercore.plugin_base:PluginBase
    harvestercore:core_utils
harvesterthrottler.tiny_throttler: harvestercore.db_proxy_pool:DBProxyPool harvestercore.plugin_base:PluginBase
    harvestercore:core_utils
harvesterworkermaker.base_worker_maker: harvestercore.plugin_base:PluginBase
harvesterworkermaker.dummy_dynamic_worker_maker: harvestercore.work_spec:WorkSpec
    harvesterworkermaker.base_worker_maker:BaseWorkerMaker
harvesterworkermaker.multijob_worker_maker: harvestercore.work_spec:WorkSpec harvestercore:core_utils
    harvesterworkermaker.base_worker_maker:BaseWorkerMaker
harvesterworkermaker.multinode_worker_maker: harvestercore.plugin_factory:PluginFactory
    harvestercore.queue_config_mapper:QueueConfigMapper harvestercore:core_utils
    harvesterworkermaker.base_worker_maker:BaseWorkerMaker
harvesterworkermaker.simple_bf_es_worker_maker: harvestercore.work_spec:WorkSpec harvestercore:core_utils
    harvestermisc.info_utils:PandaQueuesDict harvesterworkermaker.base_worker_maker:BaseWorkerMaker
harvesterworkermaker.simple_worker_maker: harvestercore.job_spec:JobSpec
    harvestercore.resource_type_constants:BASIC_RESOURCE_TYPE_MULTI_CORE
    harvestercore.resource_type_constants:BASIC_RESOURCE_TYPE_SINGLE_CORE
    harvestercore.resource_type_mapper:ResourceTypeMapper harvestercore.work_spec:WorkSpec
    harvestercore:core_utils harvestermisc.info_utils:PandaQueuesDict
    harvesterworkermaker.base_worker_maker:BaseWorkerMaker
harvesterzipper.base_zipper: harvesterconfig:harvester_config harvestercore.plugin_base:PluginBase
    harvestercore:core_utils
harvesterzipper.dummy_zipper: harvestercore:core_utils harvesterzipper.base_zipper:BaseZipper
harvesterzipper.ssh_zipper: harvestercore:core_utils harvesterzipper.base_zipper:BaseZipper
"""

# what the original's plugins import that we do not provide (yet), and why
NOT_PROVIDED = {
    "harvestermisc.htcondor_utils": "HTCondor plugin family (later issue)",
    "harvestermisc.k8s_utils": "Kubernetes plugin family (later issue); needs the kubernetes client",
    "harvestermisc.info_utils_k8s": "Kubernetes plugin family (later issue)",
    "harvestermisc.globus_utils": "Globus data movers (later issue); need globus_sdk",
    "harvestermisc.globus_compute_token_sync": "Globus Compute plugins (later issue); need globus_compute_sdk",
    "harvestermisc.superfacility_utils": "NERSC Superfacility plugin family (later issue)",
    "harvestermisc.frontend_utils": "the HTTP/Apache frontend is not implemented (HarvesterToken needs PyJWT)",
    "harvestermessenger.http_server_messenger": "the HTTP/Apache frontend is not implemented",
    "harvestersubmitter.saga_submitter": "SAGA plugin family (later issue); needs saga-python",
    "harvesterstager.go_bulk_stager": "Globus data movers (later issue)",
    "harvesterstager.yoda_rucio_rse_direct_stager": "Rucio data movers (later issue); need the rucio client",
    "harvesterpreparator.analysis_aux_preparator": "data movers (later issue)",
    "harvestercredmanager.iam_token_cred_manager": "token credential managers (later issue)",
    "harvesterfilesyncer.base_file_syncer": "the FileSyncer agent and its plugins are not implemented",
    "harvestermiddleware.ssh_tunnel_pool": "the SSH/RPC middleware is not implemented",
}

# helper and plugin modules of the original provided under the same path, with their public names
PROVIDED_ORIGINAL_MODULES = {
    "harvestermover.mover_utils": ("construct_file_path",),
    "harvestersubmitter.submitter_common": (
        "get_complicated_pilot_options", "get_python_version_option", "get_joblabel", "get_pilot_job_type",
        "get_resource_type", "get_ce_weighting", "choose_ce", "get_ce_stats_weighting_display"),
    "harvestermisc.token_utils": ("endpoint_to_filename", "WLCG_scopes", "IssuerBroker"),
    "harvestermisc.gitlab_utils": ("get_job_params", "store_job_params", "make_file_path", "job_params_file"),
    "harvesterextractor.aux_extractor": ("AuxExtractor",),
    "harvestermonitor.monitor_common": ("ec_em_map", "get_payload_errstr_from_ec"),
    "harvestercredmanager.no_voms_cred_manager": ("NoVomsCredManager",),
}

# core_utils functions the original's plugins call as core_utils.<name>
CORE_UTILS_NAMES = ("setup_logger", "make_logger", "dump_error_message", "naive_utcnow", "SafeDict",
                    "make_choice_list", "SingletonWithID", "pickle_to_text", "unpickle_from_text")

# [payload_interaction] keys the original's act_* plugins read when they are imported
IMPORT_TIME_CFG_KEYS = ("jobReportFile", "eventStatusDumpJsonFile", "updateEventsFile", "workerAttributesFile")


def _parse(text: str) -> dict[str, list[tuple[str, str]]]:
    """{original module: [(target module, name), ...]} from the IMPORTS table."""
    table: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            current, _, line = line.partition(":")
            table[current] = []
        for token in re.sub(r"\[needs:[^\]]*\]", "", line).split():
            module, _, name = token.partition(":")
            table[current].append((module, name))
    return table


TABLE = _parse(IMPORTS)
IMPORT_CASES = sorted({(module, name) for targets in TABLE.values() for module, name in targets})


def _resolve(module: str, name: str) -> None:
    """Import ``pandaharvester.<module>`` and find ``name`` in it (an attribute or a submodule)."""
    full = "pandaharvester" if module == "pandaharvester" else f"pandaharvester.{module}"
    loaded = importlib.import_module(full)
    if not hasattr(loaded, name):
        importlib.import_module(f"{full}.{name}")


def _missing_piece(module: str, name: str) -> str | None:
    """The NOT_PROVIDED entry an import depends on, if any."""
    for piece in (module, f"{module}.{name}"):
        if piece in NOT_PROVIDED:
            return piece
    return None


def test_table_is_well_formed():
    assert len(TABLE) > 100
    for original, targets in TABLE.items():
        assert original.split(".")[0].startswith("harvester"), original
        for module, name in targets:
            assert module and name and name.isidentifier(), (original, module, name)


@pytest.mark.parametrize("module, name", [case for case in IMPORT_CASES if _missing_piece(*case) is None],
                         ids=lambda value: str(value))
def test_the_original_plugins_imports_resolve(module, name):
    _resolve(module, name)


@pytest.mark.parametrize("piece", sorted(NOT_PROVIDED))
def test_not_provided_list_is_true(piece):
    """Each entry is imported by some original module and is still missing here."""
    assert any(_missing_piece(*case) == piece for case in IMPORT_CASES), f"{piece} is imported by nobody"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"pandaharvester.{piece}")


@pytest.mark.parametrize("module", sorted(PROVIDED_ORIGINAL_MODULES))
def test_provided_original_modules_have_their_names(module):
    loaded = importlib.import_module(f"pandaharvester.{module}")
    assert [name for name in PROVIDED_ORIGINAL_MODULES[module] if not hasattr(loaded, name)] == []


def test_core_utils_names_used_by_the_original_plugins():
    from pandaharvester.harvestercore import core_utils

    assert [name for name in CORE_UTILS_NAMES if not hasattr(core_utils, name)] == []


def test_payload_interaction_keys_read_at_import_time():
    from pandaharvester.harvesterconfig import harvester_config

    section = harvester_config.payload_interaction
    assert [key for key in IMPORT_TIME_CFG_KEYS if not getattr(section, key, None)] == []
