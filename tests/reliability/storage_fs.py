"""Small filesystems the storage tests make (a tmpfs, a loop-mounted ext4 image) and the faults they
put on them: fill the disk, make the DB files immutable (read-only even for root), delete the DB.

Every mount is undone by the fixture's finalizer, also when the test fails; a test is skipped,
saying why, only when this machine cannot mount (not root, no loop device).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), capture_output=True, text=True, check=check, timeout=60)


class SmallFs:
    """A filesystem of ``size_mb`` mounted at ``mountpoint`` (``kind``: "tmpfs" or "ext4")."""

    def __init__(self, base: Path, kind: str, size_mb: int) -> None:
        self.kind = kind
        self.mountpoint = base / f"{kind}_fs"
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.image = base / f"{kind}.img"
        self.mounted = False
        self.immutable: list[Path] = []
        if os.geteuid() != 0:
            pytest.skip("mounting a small filesystem needs root (the storage tests run as root in CI)")
        if kind == "tmpfs":
            result = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(self.mountpoint),
                          check=False)
        else:
            if shutil.which("mkfs.ext4") is None:
                pytest.skip("mkfs.ext4 is not installed: cannot make the ext4 image")
            with open(self.image, "wb") as out:
                out.truncate(size_mb * 1024 * 1024)
            _run("mkfs.ext4", "-q", "-F", "-m", "0", str(self.image))
            result = _run("mount", "-o", "loop", str(self.image), str(self.mountpoint), check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a {kind} filesystem here: {result.stderr.strip()}")
        self.mounted = True
        self.filler = self.mountpoint / "filler"

    # ------------------------------------------------------------ faults
    def fill(self) -> int:
        """Fill the filesystem to the last byte with ``filler``; returns its size."""
        with open(self.filler, "ab", buffering=0) as out:
            block = b"\0" * (1 << 16)
            while True:
                try:
                    out.write(block)
                except OSError:
                    break
            small = b"\0" * 512
            while True:
                try:
                    out.write(small)
                except OSError:
                    break
        return self.filler.stat().st_size

    def free(self) -> None:
        """Remove the filler."""
        self.filler.unlink(missing_ok=True)

    def make_immutable(self, *paths: Path) -> None:
        """``chattr +i``: writes through open descriptors fail (EPERM) even for root. The ``-shm``
        file must stay writable: SQLite maps it, and a write to the mapping would be SIGBUS."""
        for path in paths:
            if path.exists():
                _run("chattr", "+i", str(path))
                self.immutable.append(path)

    def make_mutable(self) -> None:
        for path in self.immutable:
            _run("chattr", "-i", str(path), check=False)
        self.immutable = []

    def remount(self, mode: str) -> subprocess.CompletedProcess:
        """``mount -o remount,<mode>`` (fails with "busy" while a process has a file open for writing)."""
        return _run("mount", "-o", f"remount,{mode}", str(self.mountpoint), check=False)

    def close(self) -> None:
        self.make_mutable()
        if self.mounted:
            if _run("umount", str(self.mountpoint), check=False).returncode != 0:
                _run("umount", "-l", str(self.mountpoint), check=False)
            self.mounted = False
        self.image.unlink(missing_ok=True)


@pytest.fixture()
def small_fs(tmp_path: Path):
    """Factory ``small_fs(kind="tmpfs", size_mb=8)`` -> SmallFs; every one is unmounted at the end."""
    made: list[SmallFs] = []

    def make(kind: str = "tmpfs", size_mb: int = 8) -> SmallFs:
        fs = SmallFs(tmp_path, kind, size_mb)
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()
