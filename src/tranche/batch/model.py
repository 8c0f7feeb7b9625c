"""Spring Batch's domain, kept by name: job instances, executions, step executions, statuses.

A *job instance* is a job name plus its identifying parameters; each attempt to run it is a
*job execution*; each step of an attempt is a *step execution* with its counters. The
repository persists these; listeners and the admin API read them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from tranche.batch.context import ExecutionContext
from tranche.batch.errors import JobParametersInvalidError
from tranche.core.clock import Clock, utc_now

__all__ = [
    "BatchStatus",
    "Clock",
    "ExitStatus",
    "JobExecution",
    "JobInstance",
    "JobParameter",
    "JobParameters",
    "ParameterValue",
    "StepExecution",
    "utc_now",
]

ParameterValue = str | int | float | bool | datetime | date

MAX_NAME = 100
MAX_TEXT = 2500


class BatchStatus(StrEnum):
    STARTING = "STARTING"
    STARTED = "STARTED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"

    @property
    def is_running(self) -> bool:
        return self in (BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING)

    @property
    def is_restartable(self) -> bool:
        return self in (BatchStatus.FAILED, BatchStatus.STOPPED)


@dataclass(frozen=True)
class ExitStatus:
    """How an execution ended, for people: a code (``COMPLETED``, ``FAILED``…) and a message."""

    exit_code: str
    exit_description: str = ""

    UNKNOWN: ClassVar[ExitStatus]
    EXECUTING: ClassVar[ExitStatus]
    COMPLETED: ClassVar[ExitStatus]
    NOOP: ClassVar[ExitStatus]
    FAILED: ClassVar[ExitStatus]
    STOPPED: ClassVar[ExitStatus]

    def with_description(self, description: str) -> ExitStatus:
        return ExitStatus(self.exit_code, description[:MAX_TEXT])


ExitStatus.UNKNOWN = ExitStatus("UNKNOWN")
ExitStatus.EXECUTING = ExitStatus("EXECUTING")
ExitStatus.COMPLETED = ExitStatus("COMPLETED")
ExitStatus.NOOP = ExitStatus("NOOP")
ExitStatus.FAILED = ExitStatus("FAILED")
ExitStatus.STOPPED = ExitStatus("STOPPED")

_TYPES: dict[str, type] = {
    "STRING": str,
    "LONG": int,
    "DOUBLE": float,
    "BOOLEAN": bool,
    "DATETIME": datetime,
    "DATE": date,
}


@dataclass(frozen=True)
class JobParameter:
    """A parameter value; only identifying ones distinguish one job instance from another."""

    value: ParameterValue
    identifying: bool = True

    @property
    def type_name(self) -> str:
        # bool before int and datetime before date: they are subclasses.
        for name in ("BOOLEAN", "LONG", "DOUBLE", "STRING", "DATETIME", "DATE"):
            if isinstance(self.value, _TYPES[name]):
                return name
        raise TypeError(type(self.value).__name__)

    def to_text(self) -> str:
        v = self.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat()
        if isinstance(v, date):
            return v.isoformat()
        return repr(v) if isinstance(v, float) else str(v)

    @classmethod
    def from_text(cls, type_name: str, text: str, identifying: bool) -> JobParameter:
        value: ParameterValue
        if type_name == "LONG":
            value = int(text)
        elif type_name == "DOUBLE":
            value = float(text)
        elif type_name == "BOOLEAN":
            value = text == "true"
        elif type_name == "DATETIME":
            value = datetime.fromisoformat(text)
        elif type_name == "DATE":
            value = date.fromisoformat(text)
        else:
            value = text
        return cls(value, identifying)


class JobParameters(Mapping[str, JobParameter]):
    """Immutable, validated parameters of a job execution."""

    def __init__(self, parameters: Mapping[str, ParameterValue | JobParameter] | None = None):
        checked: dict[str, JobParameter] = {}
        for name, raw in (parameters or {}).items():
            param = raw if isinstance(raw, JobParameter) else JobParameter(raw)
            _validate(name, param)
            checked[name] = param
        self._params = dict(sorted(checked.items()))

    def __getitem__(self, name: str) -> JobParameter:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobParameters) and self._params == other._params

    def __hash__(self) -> int:
        return hash(tuple(self._params.items()))

    def __repr__(self) -> str:
        return f"JobParameters({self.describe()})"

    def value(self, name: str, default: ParameterValue | None = None) -> ParameterValue | None:
        param = self._params.get(name)
        return default if param is None else param.value

    def as_dict(self) -> dict[str, ParameterValue]:
        return {name: p.value for name, p in self._params.items()}

    def identifying(self) -> JobParameters:
        return JobParameters({n: p for n, p in self._params.items() if p.identifying})

    def describe(self) -> str:
        """``{name=value, …}`` of the identifying parameters, as Spring prints them."""
        inner = ", ".join(f"{n}={p.to_text()}" for n, p in self.identifying()._params.items())
        return "{" + inner + "}"

    def job_key(self) -> str:
        """Hash of the identifying parameters: one job instance per (job name, key)."""
        text = "".join(
            f"{n}={p.type_name}:{p.to_text()};" for n, p in self.identifying()._params.items()
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def with_added(self, name: str, value: ParameterValue | JobParameter) -> JobParameters:
        return JobParameters({**self._params, name: value})


def _validate(name: object, param: JobParameter) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise JobParametersInvalidError(
            f"parameter name {name!r} must be a non-empty string of at most {MAX_NAME} characters"
        )
    if not isinstance(param.value, str | int | float | bool | datetime | date):
        raise JobParametersInvalidError(
            f"parameter '{name}': {type(param.value).__name__} is not a supported type "
            "(str, int, float, bool, datetime, date)"
        )
    if isinstance(param.value, datetime) and param.value.tzinfo is None:
        raise JobParametersInvalidError(f"parameter '{name}': datetime must be timezone-aware")
    if isinstance(param.value, float) and param.value != param.value:
        raise JobParametersInvalidError(f"parameter '{name}': NaN is not a value")
    if len(param.to_text()) > MAX_TEXT:
        raise JobParametersInvalidError(
            f"parameter '{name}': value longer than {MAX_TEXT} characters"
        )


@dataclass(frozen=True)
class JobInstance:
    id: int
    job_name: str
    job_key: str


@dataclass
class StepExecution:
    id: int
    job_execution_id: int
    step_name: str
    status: BatchStatus = BatchStatus.STARTING
    exit_status: ExitStatus = ExitStatus.EXECUTING
    read_count: int = 0
    write_count: int = 0
    filter_count: int = 0
    read_skip_count: int = 0
    write_skip_count: int = 0
    process_skip_count: int = 0
    commit_count: int = 0
    rollback_count: int = 0
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_updated: datetime | None = None
    context: ExecutionContext = field(default_factory=ExecutionContext)
    #: Exceptions that failed the step, in this process only (not persisted).
    failure_exceptions: list[BaseException] = field(default_factory=list)

    @property
    def skip_count(self) -> int:
        return self.read_skip_count + self.write_skip_count + self.process_skip_count

    @property
    def duration(self) -> timedelta | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass
class JobExecution:
    id: int
    instance: JobInstance
    parameters: JobParameters
    status: BatchStatus = BatchStatus.STARTING
    exit_status: ExitStatus = ExitStatus.UNKNOWN
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_updated: datetime | None = None
    context: ExecutionContext = field(default_factory=ExecutionContext)
    step_executions: list[StepExecution] = field(default_factory=list)
    failure_exceptions: list[BaseException] = field(default_factory=list)

    @property
    def job_name(self) -> str:
        return self.instance.job_name

    @property
    def duration(self) -> timedelta | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def all_failure_exceptions(self) -> list[BaseException]:
        found = list(self.failure_exceptions)
        for step in self.step_executions:
            found.extend(e for e in step.failure_exceptions if e not in found)
        return found

    def totals(self) -> dict[str, int]:
        """Counters summed over the step executions of this execution."""
        names = (
            "read_count",
            "write_count",
            "filter_count",
            "read_skip_count",
            "write_skip_count",
            "process_skip_count",
            "commit_count",
            "rollback_count",
        )
        return {n: sum(getattr(s, n) for s in self.step_executions) for n in names}
