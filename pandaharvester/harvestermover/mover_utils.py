"""Path helpers of the data movers (the original's ``harvestermover.mover_utils``)."""

from __future__ import annotations

from pandaharvester.harvestercore.core_utils import md5_hex


def construct_file_path(base_path: str, scope: str, lfn: str) -> str:
    """Rucio's deterministic path of a file below ``base_path``.

    ``<base_path>/<scope with dots as slashes>/<h[0:2]>/<h[2:4]>/<lfn>`` where ``h`` is the MD5
    hex digest of ``"<scope>:<lfn>"``; e.g. scope ``user.jdoe`` lands under ``user/jdoe/``.
    """
    digest = md5_hex(f"{scope}:{lfn}")
    scope_path = "/".join(scope.split("."))
    return f"{base_path}/{scope_path}/{digest[0:2]}/{digest[2:4]}/{lfn}"
