"""tokenCleanupJob with userdb and batchdb in one transaction per chunk, killed mid-chunk.

On MariaDB, with userdb on batchdb's server under the same account (as the runbook's one
``batch`` account is, and the test databases are), each chunk's DELETE runs on batchdb's
connection, schema-qualified, and commits with the chunk's checkpoint: one commit. The
real worker of ``test_token_crash`` freezes at chunk 2's commit and is killed with
SIGKILL: chunk 2's DELETE must not have landed (its tokens are all still there), chunk 1's
has, and the restart deletes and counts every expired token exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.doctoral.harness import Databases
from tests.doctoral.test_token_cleanup import _ids
from tests.doctoral.test_token_crash import CHUNK, killed_in_chunk_2, restart_counts_every_token
from tranche.doctoral.tables import userdb as U

# Schemas on one server: MariaDB only (SQLite files and PostgreSQL databases cannot join).
pytestmark = pytest.mark.parametrize("databases", ["mariadb"], indirect=True)


async def test_a_killed_chunk_lands_whole_or_not_at_all_and_counts_stay_exact(
    databases: Databases, make_runtime: Any, tmp_path: Path
) -> None:
    running, gone, kept = await killed_in_chunk_2(
        databases, make_runtime, tmp_path, one_transaction=True
    )
    [crashed] = await running.runtime.repository.find_running_executions("tokenCleanupJob")
    [step] = crashed.step_executions
    assert step.commit_count == 1  # one chunk committed…
    assert len(gone & await _ids(running, U.refresh_token)) == 23 - CHUNK  # …its DELETE only
    await restart_counts_every_token(running, gone, kept)
