"""A process to kill: runs a ``tokenCleanupJob`` that commits one chunk, says so, then hangs.

``python -m tests.doctoral.crash_worker SETTINGS_JSON READY_FILE``: SETTINGS_JSON holds the
DoctoralSettings fields (database URLs…). The job has the real job's name and step name
and runs through the real engine (job lock, heartbeat, checkpoints) on the real batchdb;
after its first committed chunk it writes READY_FILE and waits for ever, heartbeat
running, until the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tranche.batch import BatchListener, ChunkStep, Job, JobLauncher, ListReader, StepContext
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings


class HangAfterFirstChunk(BatchListener):
    def __init__(self, ready: Path) -> None:
        self.ready = ready

    async def after_chunk(self, ctx: StepContext) -> None:
        self.ready.write_text(str(ctx.job_execution.id))
        await asyncio.Event().wait()


async def main(settings_json: str, ready: Path) -> None:
    settings = DoctoralSettings(**json.loads(settings_json))
    runtime = Runtime.build(settings)

    async def write(items: Sequence[Any], ctx: StepContext) -> None:
        return None

    step = ChunkStep(
        "cleanupRefreshTokensStep",
        reader=ListReader(list(range(20))),
        writer=write,
        chunk_size=5,
        listeners=[HangAfterFirstChunk(ready)],
    )
    launcher = JobLauncher(
        runtime.repository, [Job("tokenCleanupJob", [step])], settings=settings.batch
    )
    await launcher.run("tokenCleanupJob", runtime.parameters("crash-worker"))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
