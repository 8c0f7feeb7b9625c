"""Job definitions: a job is a list of steps; a step is chunk-oriented or a tasklet.

These are plain, immutable descriptions, so a job module reads like the seed's description::

    token_cleanup = Job(
        "tokenCleanupJob",
        steps=[
            ChunkStep("cleanupRefreshTokensStep", reader=expired_refresh_tokens,
                      writer=delete_refresh_tokens, chunk_size=100),
        ],
    )

A reader is given either as an :class:`~tranche.batch.readers.ItemReader` or as a factory
called with the :class:`~tranche.batch.uow.StepContext` at each step start (so it can use the
job parameters). Processors are ``async (item) -> output | None`` (``None`` filters the item);
writers are ``async (items, ctx) -> None`` and write through ``ctx.session(...)`` so their
work commits with the step's checkpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tranche.batch.context import ExecutionContext
from tranche.batch.errors import BatchError
from tranche.batch.model import MAX_NAME
from tranche.batch.readers import ItemReader

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tranche.batch.listeners import BatchListener
    from tranche.batch.uow import StepContext

__all__ = [
    "ChunkStep",
    "Condition",
    "ItemProcessor",
    "ItemWriter",
    "Job",
    "ReaderSource",
    "RepeatStatus",
    "RetryPolicy",
    "SkipPolicy",
    "Step",
    "Tasklet",
    "TaskletStep",
]

T = TypeVar("T")
U = TypeVar("U")

ItemProcessor = Callable[[T], Awaitable[U | None]]
ItemWriter = Callable[[Sequence[U], "StepContext"], Awaitable[None]]
ReaderSource = ItemReader[T] | Callable[["StepContext"], ItemReader[T]]
#: Decides from the job's execution context whether a step runs (e.g. "anomalies found").
Condition = Callable[[ExecutionContext], bool]


class RepeatStatus(Enum):
    """What a tasklet returns: done, or call me again (each call commits on its own)."""

    FINISHED = "FINISHED"
    CONTINUABLE = "CONTINUABLE"


Tasklet = Callable[["StepContext"], Awaitable[RepeatStatus | None]]


def _never_engine_errors(kinds: tuple[type[BaseException], ...], what: str) -> None:
    for kind in kinds:
        if not issubclass(kind, Exception):
            raise ValueError(f"{what}: {kind.__name__} is not an Exception subclass")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry reading, processing or writing on ``retry_on`` or when ``retry_if(exc)`` is true.

    Tenacity, exponential backoff, inside the chunk: a failed write rolls the chunk's
    unit of work back and runs it again. ``retry_if`` takes a predicate such as
    :func:`tranche.batch.transient.is_transient_db_error` (errors told apart by their
    driver code, not their class).
    """

    retry_on: tuple[type[BaseException], ...] = ()
    attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    retry_if: Callable[[BaseException], bool] | None = None

    def __post_init__(self) -> None:
        _never_engine_errors(self.retry_on, "retry_on")
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("backoff must satisfy 0 <= initial_backoff <= max_backoff")

    @property
    def enabled(self) -> bool:
        return self.attempts > 1 and (bool(self.retry_on) or self.retry_if is not None)

    def retries(self, exc: BaseException) -> bool:
        if isinstance(exc, BatchError) or not isinstance(exc, Exception):
            return False
        return isinstance(exc, self.retry_on) or (self.retry_if is not None and self.retry_if(exc))


@dataclass(frozen=True)
class SkipPolicy:
    """Skip items whose reading, processing or writing raises ``skip_on``, up to ``limit``."""

    skip_on: tuple[type[BaseException], ...] = ()
    limit: int = 10
    no_skip: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        _never_engine_errors(self.skip_on, "skip_on")
        if self.limit < 0:
            raise ValueError(f"skip limit must be >= 0, got {self.limit}")

    def skips(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, self.skip_on)
            and not isinstance(exc, self.no_skip)
            and not isinstance(exc, BatchError)
        )


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValueError(f"{kind} name must be 1 to {MAX_NAME} characters, got {name!r}")


@dataclass(frozen=True)
class ChunkStep(Generic[T, U]):
    """Read ``chunk_size`` items, process each, write them together, commit, repeat."""

    name: str
    _: KW_ONLY
    reader: ReaderSource[T]
    writer: ItemWriter[U]
    processor: ItemProcessor[T, U] | None = None
    chunk_size: int = 100
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    skip: SkipPolicy = field(default_factory=SkipPolicy)
    listeners: Sequence[BatchListener] = ()
    when: Condition | None = None
    allow_start_if_complete: bool = False
    #: The database the writer writes through ``ctx.session(engine, join_checkpoint=True)``
    #: (and batchdb not at all). When it can join batchdb's transaction, the engine fences
    #: the chunk by its checkpoint, in that one transaction, instead of by a first
    #: statement of its own: one round trip fewer per chunk, and still nothing commits
    #: unless the job lock is this execution's.
    joined: AsyncEngine | None = None

    def __post_init__(self) -> None:
        _check_name("step", self.name)
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ValueError(f"step '{self.name}': chunk_size must be >= 1, got {self.chunk_size}")


@dataclass(frozen=True)
class TaskletStep:
    """One unit of work (``fn``), committed with the step's state; repeat while CONTINUABLE."""

    name: str
    fn: Tasklet
    _: KW_ONLY
    listeners: Sequence[BatchListener] = ()
    when: Condition | None = None
    allow_start_if_complete: bool = False

    def __post_init__(self) -> None:
        _check_name("step", self.name)


Step = ChunkStep[Any, Any] | TaskletStep


@dataclass(frozen=True)
class Job:
    """A named sequence of steps; a restart skips the steps that already completed."""

    name: str
    steps: Sequence[Step]
    _: KW_ONLY
    listeners: Sequence[BatchListener] = ()
    restartable: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("job", self.name)
        if not self.steps:
            raise ValueError(f"job '{self.name}' has no steps")
        names = [s.name for s in self.steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"job '{self.name}': duplicate step names {duplicates}")
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "listeners", tuple(self.listeners))
