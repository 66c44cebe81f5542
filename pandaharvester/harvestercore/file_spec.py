"""FileSpec: an input, output, log or zip file of a job — a row of ``file_table``."""

from __future__ import annotations

from typing import Any

from . import lifecycle
from .spec_base import SpecBase


class FileSpec(SpecBase):
    """A file of a job.

    fileType is one of input, output, log, es_output, zip_output or aux_input. Input files go
    to_prepare/preparing → triggered → ready; outputs defined → transferring → finished/failed.
    """

    # fileType of auxiliary inputs (container images, ...)
    AUX_INPUT = lifecycle.TYPE_AUX_INPUT

    attributesWithTypes = (
        "fileID:integer primary key autoincrement",
        "PandaID:integer / index",
        "taskID:integer",
        "lfn:text / index",
        "status:text / index",
        "fsize:integer",
        "chksum:text",
        "path:text",
        "fileType:text",
        "eventRangeID:text",
        "modificationTime:timestamp",
        "fileAttributes:blob",
        "isZip:integer",
        "zipFileID:integer / index",
        "objstoreID:integer",
        "endpoint:text",
        "groupID:text / index",
        "groupStatus:text / index",
        "groupUpdateTime:timestamp / index",
        "attemptNr:integer",
        "todelete:integer / index",
        "scope:text",
        "pathConvention:integer",
        "provenanceID:text / index",
        "workerID:integer / index",
        "url:text",
    )

    # columns stored as 0 rather than NULL
    zeroAttrs = ("attemptNr", "todelete")

    def _init_extra_attributes(self) -> None:
        self.__dict__["associatedFiles"] = set()

    def add_associated_file(self, filespec: "FileSpec") -> None:
        """Attach a file packed into this one (for zip files)."""
        self.associatedFiles.add(filespec)

    def __repr__(self) -> str:
        d: dict[str, Any] = self.__dict__
        return f"<FileSpec fileID={d.get('fileID')!r} lfn={d.get('lfn')!r} type={d.get('fileType')!r} status={d.get('status')!r}>"
