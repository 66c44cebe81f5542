"""One module per batch system (harvesterbatch), the old import paths kept, and the import layering."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pandaharvester"
PLUGIN_PACKAGES = {"harvestersubmitter", "harvestermonitor", "harvestersweeper", "harvesterpreparator",
                   "harvesterstager", "harvestermessenger", "harvesterworkermaker", "harvesterthrottler",
                   "harvestercredmanager", "harvesterzipper", "harvesterextractor", "harvesterfilesyncer"}
ABOVE_CORE = PLUGIN_PACKAGES | {"harvesterbody", "harvestermisc", "harvestertest", "harvesterscripts",
                                "harvesterbatch"}


@pytest.mark.parametrize("new, old", [
    ("pandaharvester.harvesterbatch.slurm", "pandaharvester.harvestersubmitter.slurm_utils"),
    ("pandaharvester.harvesterbatch.dummy", "pandaharvester.harvestersubmitter.dummy_submitter"),
    ("pandaharvester.harvestercore.info_dicts", "pandaharvester.harvestermisc.info_utils"),
    ("pandaharvester.harvestercore.payload_interaction", "pandaharvester.harvestermessenger.base_messenger"),
])
def test_old_paths_re_export_every_public_name(new, old):
    new_module, old_module = importlib.import_module(new), importlib.import_module(old)
    public = getattr(new_module, "__all__", None) or [n for n in vars(new_module) if not n.startswith("_")
                                                       and getattr(vars(new_module)[n], "__module__", new) == new]
    assert public
    missing = [name for name in public if getattr(old_module, name, None) is not getattr(new_module, name)]
    assert not missing, f"{old} lacks {missing} of {new}"


def test_plugins_of_one_batch_system_share_one_module():
    from pandaharvester.harvesterbatch import dummy, slurm
    from pandaharvester.harvestermonitor import dummy_monitor, slurm_monitor
    from pandaharvester.harvestersweeper import dummy_sweeper, slurm_sweeper

    assert slurm_monitor.SlurmClient is slurm.SlurmClient is slurm_sweeper.SlurmClient
    assert dummy_monitor.pilot_is_alive is dummy.pilot_is_alive
    assert dummy_sweeper.terminate_pilots is dummy.terminate_pilots


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name.startswith("pandaharvester.")]


def test_imports_point_down_only():
    """No import from core/config up to plugins, agents, misc or harvesterbatch; no plugin package imports another."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package = path.relative_to(PACKAGE).parts[0] if len(path.relative_to(PACKAGE).parts) > 1 else ""
        for line, name in _imports(path):
            target = name.split(".")[1]
            if package in ("harvestercore", "harvesterconfig") and target in ABOVE_CORE:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} core imports {name}")
            elif package in PLUGIN_PACKAGES and target in PLUGIN_PACKAGES and target != package \
                    and (package, target) != ("harvesterstager", "harvesterzipper"):  # BaseStager extends BaseZipper
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} plugin package {package} imports {name}")
            elif package in PLUGIN_PACKAGES | {"harvesterbatch"} and target == "harvesterbody":
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports an agent: {name}")
    assert not wrong, "\n".join(wrong)
