"""Dynamic queues through PandaQueuesDict, auto-blacklisting, pilot version, resource types."""

from __future__ import annotations

import itertools

import pytest

from pandaharvester.harvestercore.resource_type_mapper import ResourceTypeMapper
from pandaharvester.harvestermisc.info_utils import PandaQueuesDict

from test_queue_config_helpers import cache_of, full_queue, load, make_mapper, write_json

_ids = itertools.count()
ME = "test-harvester"


def pq(nickname, **attrs):
    """A CRIC panda-queue entry served by this instance."""
    entry = {"nickname": nickname, "panda_resource": nickname, "pilot_manager": "Harvester", "harvester": ME,
             "status": "online", "type": "production", "workflow": "pull", "capability": "score",
             "corecount": 1, "maxrss": 2000, "maxwdir": 10240, "catchall": "", "params": {}}
    entry.update(attrs)
    return entry


PANDA_QUEUES = {
    "DYN_PULL": pq("DYN_PULL", params={"maxWorkers": 7, "nQueueLimitWorker": 3, "notALimit": "x"}),
    "DYN_UPS": pq("DYN_UPS", capability="ucore", workflow="pull_ups", corecount=8, maxrss=16000),
    "DYN_TMPL": pq("DYN_TMPL", harvester_template="SPECIAL_TEMPLATE", status="brokeroff"),
    "DYN_UNIFIED": pq("DYN_UNIFIED", type="unified", workflow="push", catchall="grandly_unified"),
    "DYN_NOTMPL": pq("DYN_NOTMPL", type="analysis", workflow="push"),
    "NOT_MINE": pq("NOT_MINE", harvester="other-harvester"),
    "PER_CORE": pq("PER_CORE", catchall="per_core_attr,x=1", corecount=4, maxrss=1000),
}


def resolver(data=None, **kwargs):
    return PandaQueuesDict(id=f"pqd-{next(_ids)}", harvester_id=ME,
                           cache_reader=cache_of({"panda_queues.json": data or PANDA_QUEUES}), **kwargs)


def test_panda_queues_dict_lookups():
    info = resolver()
    assert info.get_all_queue_names() == {"DYN_PULL", "DYN_UPS", "DYN_TMPL", "DYN_UNIFIED", "DYN_NOTMPL", "PER_CORE"}
    assert info.get_panda_queue_name("DYN_PULL") == "DYN_PULL" and info.get_panda_queue_name("NOPE") is None
    assert info.get_queue_status("NOT_MINE") == "offline" and info.get_queue_status("DYN_TMPL") == "brokeroff"
    assert info.get_queue_status("NOPE") is None
    assert info.is_ups_queue("DYN_UPS") and not info.is_ups_queue("DYN_PULL")
    assert info.is_grandly_unified_queue("DYN_UNIFIED") and not info.is_grandly_unified_queue("DYN_PULL")
    assert info.get_type_workflow("DYN_UNIFIED") == ("production", "push")
    assert info.get_type_workflow("NOPE") == (None, None)
    assert info.get_harvester_template("DYN_TMPL") == "SPECIAL_TEMPLATE"
    assert info.get_harvester_template("DYN_PULL") == ""
    assert info.get_harvester_params("DYN_PULL")["maxWorkers"] == 7 and info.get_harvester_params("NOPE") == {}
    assert info["PER_CORE"]["maxrss"] == 4000  # per-core attributes scaled by corecount
    assert PANDA_QUEUES["PER_CORE"]["maxrss"] == 1000  # cached data untouched
    assert info.get_prorated_maxwdir_GiB("DYN_UPS", 2) == pytest.approx(10 * 2 / 8)
    assert info.get_prorated_maxwdir_GiB("DYN_PULL", 2) == pytest.approx(10)
    assert info.get_prorated_maxwdir_GiB("NOPE", 2) == 0
    with pytest.raises(KeyError):
        info["NOPE"]


def test_panda_queues_dict_by_resource_name_and_empty_cache():
    data = {"NICK": pq("NICK", panda_resource="RESOURCE_X")}
    info = resolver(data)
    assert info.get_panda_queue_name("RESOURCE_X") == "NICK" and info.get_panda_queue_name("NICK") == "NICK"
    empty = PandaQueuesDict(id=f"pqd-{next(_ids)}", cache_reader=lambda key: None)
    assert empty.get_all_queue_names() == set() and empty.get("X") is None
    assert PandaQueuesDict(id="same-pqd", cache_reader=lambda key: None) is PandaQueuesDict(id="same-pqd")


def templates():
    return {
        "production.pull": full_queue(isTemplateQueue=True, mapType="NoJob", maxWorkers=1),
        "SPECIAL_TEMPLATE": full_queue(isTemplateQueue=True, prodSourceLabel="special"),
        "production.push": full_queue(isTemplateQueue=True),
        "production.pull_ups": full_queue(isTemplateQueue=True, mapType="OneToOne"),
    }


def test_dynamic_queues_from_resolver(tmp_path):
    data = templates()
    data["DYN_PULL"] = {"nNewWorkers": 5}  # a local overlay on a dynamic queue
    mapper = load(tmp_path, data, resolver=resolver(), queue_list=["DYNAMIC"], auto_blacklist=True)
    queues = mapper.get_all_queues()
    assert sorted(queues) == ["DYN_PULL", "DYN_TMPL", "DYN_UNIFIED", "DYN_UPS", "PER_CORE"]
    pull = queues["DYN_PULL"]
    assert pull.templateQueueName == "production.pull" and pull.maxWorkers == 7 and pull.nQueueLimitWorker == 3
    assert pull.nNewWorkers == 5 and not hasattr(pull, "notALimit") and pull.pandaQueueName == "DYN_PULL"
    assert queues["DYN_TMPL"].prodSourceLabel == "special" and queues["DYN_TMPL"].queueStatus == "brokeroff"
    assert queues["DYN_UNIFIED"].templateQueueName == "production.push"
    ups = queues["DYN_UPS"]
    assert ups.runMode == "slave" and ups.mapType == "NoJob" and mapper.get_active_ups_queues() == ["DYN_UPS"]
    # analysis.push has no template and no default: one error naming the queue
    assert [(e.queue_name, e.key) for e in mapper.errors] == [("DYN_NOTMPL", "templateQueueName")]
    assert "'analysis.push'" in str(mapper.errors[0])


def test_dynamic_default_template(tmp_path):
    info = resolver({"NO_TYPE": pq("NO_TYPE", type=None, workflow=None)})
    mapper = load(tmp_path, templates(), resolver=info, queue_list=["DYNAMIC"],
                  default_template_queue_name="production.push")
    assert mapper.errors == [] and mapper.get_queue("NO_TYPE").templateQueueName == "production.push"
    # as the original, the default is only used when CRIC gives no type/workflow
    strict = load(tmp_path, templates(), resolver=resolver(), queue_list=["DYNAMIC"],
                  default_template_queue_name="production.push")
    assert [e.queue_name for e in strict.errors] == ["DYN_NOTMPL"]


def test_auto_blacklist_and_pilot_version(tmp_path):
    data = {"DYN_PULL": full_queue(), "NOT_MINE": full_queue(), "DYN_UPS": full_queue()}
    info = resolver(dict(PANDA_QUEUES, DYN_UPS=pq("DYN_UPS", pilot_version="3"),
                         DYN_PULL=pq("DYN_PULL", pilot_version="2")))
    mapper = load(tmp_path, data, resolver=info, queue_list=["ALL"], auto_blacklist=True, pilot_version="2")
    assert mapper.get_queue("NOT_MINE").queueStatus == "offline"
    assert sorted(mapper.get_active_queues()) == ["DYN_PULL"]  # NOT_MINE offline, DYN_UPS pilot 3


def test_static_queue_without_dynamic_template_is_kept(tmp_path):
    data = {"DYN_NOTMPL": full_queue(maxWorkers=2)}
    mapper = load(tmp_path, data, resolver=resolver(), queue_list=["DYNAMIC"])
    assert mapper.get_queue("DYN_NOTMPL").maxWorkers == 2
    assert "DYN_NOTMPL" not in {e.queue_name for e in mapper.errors}


def test_resolver_from_settings(tmp_path):
    path = write_json(tmp_path / "q.json", {"Q": full_queue()})
    mapper = make_mapper(path, resolver_module="pandaharvester.no_such_resolver", resolver_class="X")
    assert mapper.has_queue("Q") and mapper.get_queue("Q").pandaQueueName is None


# ---------------------------------------------------------------- resource types
def rt_mapper(data=None):
    entries = {"resource_types.json": data} if data is not None else {}
    return ResourceTypeMapper(id=f"rt-{next(_ids)}", cache_reader=cache_of(entries))


def test_resource_types_builtin_defaults():
    mapper = rt_mapper()
    assert sorted(mapper.get_all_resource_types()) == ["MCORE", "MCORE_HIMEM", "SCORE", "SCORE_HIMEM"]
    assert mapper.from_cache is False
    assert mapper.is_valid_resource_type("SCORE") and not mapper.is_valid_resource_type("GPU")
    assert mapper.is_single_core_resource_type("SCORE_HIMEM") and not mapper.is_single_core_resource_type("MCORE")
    assert mapper.is_multi_core_resource_type("MCORE") and not mapper.is_multi_core_resource_type("GPU")
    assert sorted(mapper.get_single_core_resource_types()) == ["SCORE", "SCORE_HIMEM"]
    assert sorted(mapper.get_multi_core_resource_types()) == ["MCORE", "MCORE_HIMEM"]
    assert mapper.is_high_memory_resource_type("MCORE_HIMEM") and not mapper.is_high_memory_resource_type("MCORE")
    assert mapper.get_rtype_for_queue({"corecount": 8, "maxrss": 16000}) == "MCORE"
    assert mapper.get_rtype_for_queue({"corecount": 1, "maxrss": 4000}) == "SCORE_HIMEM"
    assert mapper.get_rtype_for_queue({"corecount": 8, "capability": "ucore"}) == ""


def test_resource_types_from_cache_and_worker_requirements():
    mapper = rt_mapper([{"resource_name": "SCORE", "mincore": 1, "maxcore": 1, "minrampercore": None,
                         "maxrampercore": 2000},
                        {"resource_name": "GPU", "mincore": 1, "maxcore": None, "minrampercore": None,
                         "maxrampercore": None},
                        {"broken": True}])
    assert sorted(mapper.get_all_resource_types()) == ["GPU", "SCORE"] and mapper.from_cache
    unified = {"corecount": 8, "maxrss": 24000, "capability": "ucore"}
    assert mapper.calculate_worker_requirements("SCORE", unified) == (1, 2000)
    assert mapper.calculate_worker_requirements("GPU", unified) == (8, 24000)
    assert mapper.calculate_worker_requirements("SCORE", {"corecount": 8, "maxrss": 24000}) == (8, 24000)
    assert mapper.calculate_worker_requirements("NOPE", unified) == (1, 1)
    himem = rt_mapper()
    assert himem.calculate_worker_requirements("MCORE", {"corecount": 8, "maxrss": 8000, "capability": "ucore"}) \
        == (8, 8000)


def test_resource_types_bare_list_or_wrapped():
    """The real server's reply is a bare list; the old {"ResourceTypes": [...]} form still works."""
    types = [{"resource_name": "SCORE", "mincore": None, "maxcore": 1, "minrampercore": None, "maxrampercore": 2000},
             {"resource_name": "MCORE_XL", "mincore": 16, "maxcore": None, "minrampercore": None,
              "maxrampercore": None}]
    for data in (types, {"ResourceTypes": types}):
        mapper = rt_mapper(data)
        assert sorted(mapper.get_all_resource_types()) == ["MCORE_XL", "SCORE"] and mapper.from_cache
        assert mapper.get_rtype_for_queue({"corecount": 32, "maxrss": 64000}) == "MCORE_XL"
    assert rt_mapper({"something": "else"}).from_cache is False  # unusable: the built-in defaults
