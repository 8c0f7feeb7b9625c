"""Child process of ``test_kill.py``: run archiveJob and ``kill -9`` itself at one point.

``python -m tests.doctoral.archive.killed_run '{"urls": …, "root": …, "point": …}'``
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from tests.doctoral.archive.data import RUN, archive_settings
from tests.doctoral.harness import Databases
from tranche.doctoral.archive import format as archive_format
from tranche.doctoral.archive import writer as archive_writer
from tranche.doctoral.runtime import Runtime


def _die(*_args: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(original: Any) -> Any:
    def run_then_die(*args: Any) -> Any:
        original(*args)
        _die()

    return run_then_die


POINTS = {
    "after_rename_before_rows": (archive_format, "_fsync_dir", _die),
    "after_commit_before_removal": (archive_writer, "_remove_files", _die),
    "after_removal_before_recorded": (
        archive_writer,
        "_remove_files",
        _after(archive_writer._remove_files),
    ),
}


async def main(args: dict[str, Any]) -> None:
    settings = Databases("sqlite", args["urls"]).settings(
        **archive_settings(Path(args["root"]), archive_chunk_size=2)
    )
    target, name, replacement = POINTS[args["point"]]
    setattr(target, name, replacement)
    runtime = Runtime.build(settings, CollectorRegistry())
    try:
        spec = runtime.spec("archiveJob")
        await runtime.launcher.run(spec.job, runtime.parameters("killed", at=RUN))
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
