"""File transfers with the PanDA cache: worker logs and HPO checkpoints.

A mixin of :class:`~.panda_communicator.PandaCommunicator`.
"""

from __future__ import annotations

import os
import uuid
import zlib
from typing import Any, BinaryIO

from .reply_shapes import envelope


class FilesApiMixin:
    """``upload_file``, ``upload_checkpoint``, ``download_checkpoint``, ``clear_checkpoint``."""

    def upload_file(self, file_name: str, file_object: BinaryIO, offset: int, read_bytes: int) -> tuple[bool, str]:
        """Upload ``read_bytes`` bytes from ``offset`` of a log file (zlib-compressed) to the cache."""
        tmp_log = self.make_logger(method_name="upload_file")
        tmp_log.debug(f"start for {file_name} {offset}:{read_bytes}")
        try:
            file_object.seek(offset)
            chunk = file_object.read(read_bytes)
        except (OSError, ValueError) as exc:
            return False, self._fail(tmp_log, f"cannot read {file_name}: {exc}")
        if isinstance(chunk, str):
            chunk = chunk.encode()
        files = {"file": (file_name, zlib.compress(chunk))}
        ok, reply = self.request_ssl("UPLOAD", "file_server/upload_jedi_log", files=files)
        if not ok:
            return False, self._fail(tmp_log, reply)
        success, message, _ = envelope(reply)
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success, message

    def upload_checkpoint(self, base_url: str, task_id: Any, panda_id: Any, file_name: str, file_path: str) -> bool:
        """Upload an HPO checkpoint file to ``base_url``; True on success."""
        tmp_log = self.make_logger(f"taskID={task_id} pandaID={panda_id}", method_name="upload_checkpoint")
        tmp_log.debug(f"start for {file_name}")
        try:
            with open(file_path, "rb") as stream:
                content = stream.read()
        except OSError as exc:
            self._fail(tmp_log, f"cannot read {file_path}: {exc}")
            return False
        ok, reply = self.request_ssl("UPLOAD", "file_server/upload_hpo_checkpoint",
                                     files={"file": (file_name, content)}, base_url=base_url)
        if not ok:
            self._fail(tmp_log, reply)
            return False
        success, message, _ = envelope(reply)
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success

    def download_checkpoint(self, base_url: str, task_id: Any, panda_id: Any, point_id: Any,
                            base_path: str) -> tuple[bool, str | None]:
        """Fetch the checkpoint of an HPO point into a new file under ``base_path``: ``(ok, file name)``."""
        tmp_log = self.make_logger(f"taskID={task_id} pandaID={panda_id}", method_name="download_checkpoint")
        tmp_log.debug(f"start for ID={point_id}")
        path = f"cache/hpo_cp_{task_id}_{point_id}"
        ok, content = self.http.request("POST", path, {}, base_url=base_url, raw=True)
        if not ok:
            self._fail(tmp_log, content)
            return False, None
        file_name = os.path.join(base_path, uuid.uuid4().hex)
        try:
            with open(file_name, "wb") as stream:
                stream.write(content)
        except OSError as exc:
            self._fail(tmp_log, f"cannot write {file_name}: {exc}")
            return False, None
        tmp_log.debug(f"downloaded {file_name}")
        return True, file_name

    def clear_checkpoint(self, base_url: str, task_id: Any, point_id: Any) -> tuple[bool, str]:
        """Delete an HPO checkpoint from ``base_url``."""
        tmp_log = self.make_logger(f"taskID={task_id} pointID={point_id}", method_name="clear_checkpoint")
        # the server takes both ids as strings
        ok, reply = self.request_ssl("POST", "file_server/delete_hpo_checkpoint",
                                     {"task_id": str(task_id), "sub_id": str(point_id)}, base_url=base_url)
        if not ok:
            return False, self._fail(tmp_log, reply)
        success, message, _ = envelope(reply)
        (tmp_log.debug if success else tmp_log.error)(f"done with {success} : {message}")
        return success, message
