"""What every doctoral job shares: the run instant, the counts it records, its schedule entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DataError, IntegrityError

from tranche.batch.job import Job, RetryPolicy, SkipPolicy
from tranche.batch.model import JobExecution
from tranche.batch.transient import is_transient_db_error
from tranche.batch.uow import StepContext

__all__ = [
    "COUNTS_KEY",
    "RUN_AT",
    "Estimate",
    "JobSpec",
    "StepPolicies",
    "add_counts",
    "counts_of",
    "run_at",
]

#: Job parameter: the instant the job works relative to ("expired at job start").
RUN_AT = "runAt"
#: Job-context key of the per-job counts (deleted tokens, alerts per type…).
COUNTS_KEY = "counts"


#: How many items a run at the given instant will read (for progress bars; may drift).
Estimate = Callable[[datetime], Awaitable[int]]


@dataclass(frozen=True)
class JobSpec:
    """A job with what the API and the scheduler show about it."""

    job: Job
    cron: str
    description: str
    estimate: Estimate | None = None
    #: The job reads a ``dryRun`` parameter (finds and reports, changes nothing).
    supports_dry_run: bool = False

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class StepPolicies:
    """Retry and skip for a doctoral step (seed task 21.1; the original's skip limits 10/10/5).

    Transient database errors (deadlock, lock wait timeout, lost connection…) are retried
    inside the chunk with exponential backoff; an item whose data the database refuses
    (``DataError``, ``IntegrityError``) or that cannot be processed (``ValueError``) is
    skipped, counted in the step's skip counts and ``itemsFailed``, up to ``skip_limit``;
    one more fails the step.
    """

    attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    skip_limit: int = 10

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts,
            initial_backoff=self.initial_backoff,
            max_backoff=max(self.max_backoff, self.initial_backoff),
            retry_if=is_transient_db_error,
        )

    @property
    def skip(self) -> SkipPolicy:
        return SkipPolicy(skip_on=(DataError, IntegrityError, ValueError), limit=self.skip_limit)


def run_at(ctx: StepContext) -> datetime:
    """The ``runAt`` parameter (aware UTC); a restart keeps the original run's instant."""
    value = ctx.parameters.value(RUN_AT)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    start = ctx.job_execution.start_time or datetime.now(UTC)
    return start.astimezone(UTC)


def add_counts(ctx: StepContext, increments: Mapping[str, int]) -> None:
    """Add to the job's counts; they commit with the chunk, so a rolled-back chunk adds nothing."""
    counts = dict(ctx.job_context.get(COUNTS_KEY, {}))
    for key, n in increments.items():
        if n:
            counts[key] = int(counts.get(key, 0)) + n
    ctx.job_context[COUNTS_KEY] = counts


def counts_of(execution: JobExecution) -> dict[str, int]:
    raw = execution.context.get(COUNTS_KEY, {})
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
