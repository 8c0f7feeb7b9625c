"""dureeDoctoratAlertJob: remind doctorants and directors as the thesis nears 3 and 6 years.

For each doctorant's current validated enrollment the rule of
:mod:`tranche.doctoral.durations` decides (by default the owner's: years =
days since ``date_premiere_inscription`` / 365.25; ≥ 2.5 APPROCHE_3_ANS, ≥ 5.5
APPROCHE_6_ANS, ≥ 6.0 DEPASSE_6_ANS). A doctorant whose defense is authorised,
scheduled or completed in defensedb gets nothing: no reminder, no row, no
block.

Two ledgers, one per reader of them:

* the owner's ``alertes_duree`` (inscription_db): one row per doctorant and type,
  written as inscription-service writes it (``traite = 0``), so its screens show
  what the mails said. The re-enrollment block (``bloque_re_inscription = 1``) is
  written in the same inscription_db transaction as the DEPASSE_6_ANS row, and
  only then: once that row exists the block has been applied, so an
  administrator who clears the flag by hand is never re-blocked.
* ``alerte_duree_envoyee`` (batchdb): the reminders sent, written in the same
  batchdb transaction as the outbox rows, so a crash cannot send without
  recording or record without sending. Each type is sent once per doctorant.

When inscription_db is on batchdb's server under the same account (the runbook's one
``batch`` account), both are written in one transaction per chunk, on batchdb's
connection, with the checkpoint (``duree_alert_one_transaction``, on by default): one
commit instead of two, and no window between them.

Both recipients get a ``RAPPEL_ECHEANCE`` in notification-service's format on
topic ``notifications``, keyed by the doctorant id, each with a text written to
them. An enrollment nobody can be told about (both people missing from userdb,
or their addresses refused) is listed, with the reason, for the admins and tried
again next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.batch.job import ChunkStep, ItemWriter, Job, RepeatStatus, TaskletStep
from tranche.batch.listeners import BatchListener
from tranche.batch.readers import KeysetReader
from tranche.batch.uow import StepContext, is_joined, shared_schema
from tranche.core.db import Database
from tranche.core.multirow import insert_rows
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.doctoral.durations import AlertRule, AlertType, whole_months
from tranche.doctoral.jobs.common import COUNTS_KEY, JobSpec, StepPolicies, add_counts, run_at
from tranche.doctoral.jobs.duree_messages import AlertDecision, payloads, unreachable_reason
from tranche.doctoral.jobs.duree_reader import (
    Enrollment,
    enrollment_reader,
    ids_in,
    recorded_for,
)
from tranche.doctoral.models import alerte_duree_envoyee, utc_naive
from tranche.doctoral.tables.inscription_db import alertes_duree, inscriptions

__all__ = [
    "ANOMALIES_KEY",
    "DESCRIPTION",
    "JOB_NAME",
    "AlertDecision",
    "build",
    "decide",
    "payloads",
]

JOB_NAME = "dureeDoctoratAlertJob"
DESCRIPTION = (
    "Monitors doctoral duration and alerts doctorants and directors at 3 years, "
    "6 years and beyond (blocking re-enrollment)"
)
#: Job-context key listing enrollments nobody could be notified about (capped).
ANOMALIES_KEY = "anomalies"
_MAX_ANOMALIES = 200
#: Enrollments read (and looked up in the other databases) per reader page. Larger than
#: a chunk: a page's six lookups are most of a chunk's cost, and the page's facts stay
#: right for its later chunks (each doctorant is decided once, by their current
#: enrollment; the owner's rows are re-read inside each chunk's transaction).
READ_PAGE = 500


def decide(item: Enrollment, rule: AlertRule) -> AlertDecision | None:
    """What to do about one enrollment (None: nothing, the item is filtered)."""
    if not item.is_current:
        return None  # an older enrollment of the same thesis: its latest one speaks for it
    if item.defense is not None:
        return None  # defended, scheduled or authorised: no reminder and never a block
    alert = rule.classify(item.date_premiere_inscription, item.run_date, item.derogation)
    if alert is None:
        return None
    send = alert not in item.already_sent
    record = alert not in item.owner_recorded
    block = alert is AlertType.DEPASSE_6_ANS and record and not item.bloque_re_inscription
    if not send and not record:
        return None
    months = whole_months(item.date_premiere_inscription, item.run_date)
    return AlertDecision(item, alert, months, send, record, block)


_BLOCKED = "réinscription bloquée"


def run_marker(ctx: StepContext) -> str:
    """Names the run in the owner's rows; the same for every attempt (restart) of the run."""
    return f"[batch {run_at(ctx).strftime('%Y-%m-%dT%H:%M:%SZ')}]"


def _owner_action(d: AlertDecision, blocked: bool, marker: str) -> str:
    text = f"Alerte {d.alert.value} enregistrée par batch-service"
    if d.send:
        text += " ; rappel envoyé au doctorant et au directeur de thèse"
    if blocked:
        text += f" ; {_BLOCKED}"
    return f"{text[: 480 - len(marker)]} {marker}"


async def _recount(ctx: StepContext, inscription_db: Database) -> RepeatStatus:
    """The owner-side counts, read back from inscription_db.

    inscription_db commits before batchdb's checkpoint (unless they share one transaction),
    so a process that dies between the two has rows in the owner's table that no
    checkpoint counted, and the restart finds them present and writes (and counts)
    nothing. Counting what the run's marker shows in ``alertes_duree`` makes the
    execution's counts right whatever happened in between.
    """
    marker = run_marker(ctx)
    A = alertes_duree
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((A.c.action.like(f"%{_BLOCKED}%"), 1), else_=0)), 0),
    ).where(A.c.action.like(f"%{marker}"))
    async with inscription_db.sessions() as session:
        recorded, blocked = (await session.execute(query)).one()
    counts = dict(ctx.job_context.get(COUNTS_KEY, {}))
    for key, value in (("alertesEnregistrees", recorded), ("reinscriptionsBloquees", blocked)):
        if int(value):
            counts[key] = int(value)
        else:
            counts.pop(key, None)
    ctx.job_context[COUNTS_KEY] = counts
    return RepeatStatus.FINISHED


async def _record_owner_rows(
    decisions: Sequence[AlertDecision],
    ctx: StepContext,
    owner: _Owner,
    zone: ZoneInfo,
) -> dict[str, int]:
    """``alertes_duree`` rows (insert unless present) and the blocks that go with them."""
    wanted = [d for d in decisions if d.record]
    if not wanted:
        return {}
    session = await owner.session(ctx)
    # Re-read inside the transaction: a retried chunk, or the owner meanwhile, may have one
    # (on any of the doctorant's enrollments the page saw; by their ids, through the index).
    owners = {i: d.enrollment.doctorant_id for d in wanted for i in d.enrollment.enrollment_ids}
    present = await recorded_for(session, owners)
    fresh = [d for d in wanted if d.alert not in present.get(d.enrollment.doctorant_id, set())]
    if not fresh:
        return {}
    # The owner's LocalDateTime: wall-clock time where the school is.
    local_now = datetime.now(UTC).astimezone(zone).replace(tzinfo=None)
    to_block = [d.enrollment.inscription_id for d in fresh if d.block]
    marker = run_marker(ctx)
    rows = [
        (
            d.enrollment.inscription_id,
            d.alert.value,
            local_now,
            False,
            _owner_action(d, d.block, marker),
        )
        for d in fresh
    ]
    await insert_rows(session, alertes_duree, _OWNER_COLUMNS, rows, owner.schema(session))
    blocked = 0
    if to_block:
        result = await session.execute(_BLOCK, {"ids": to_block})
        blocked = int(getattr(result, "rowcount", 0) or 0)
    return {"alertesEnregistrees": len(fresh), "reinscriptionsBloquees": blocked}


#: Built once, like the engine's per-chunk statements: the object keeps its cache key.
_BLOCK = (
    sa.update(inscriptions)
    .where(
        ids_in(inscriptions.c.id),
        inscriptions.c.bloque_re_inscription == sa.false(),
    )
    .values(bloque_re_inscription=True)
)
_OWNER_COLUMNS = ("inscription_id", "type", "date_alerte", "traite", "action")
_LEDGER_COLUMNS = (
    "inscription_id",
    "doctorant_id",
    "type_alerte",
    "date_envoi",
    "mois_ecoules",
    "job_execution_id",
)


@dataclass
class _Sent:
    """The chunk's reminders: ledger rows, their events, and who could not be told."""

    ledger: list[tuple[object, ...]] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)
    anomalies: list[dict[str, object]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _reminders(
    decisions: Sequence[AlertDecision], ctx: StepContext, topic: str, rule: AlertRule
) -> _Sent:
    now = utc_naive(datetime.now(UTC))
    out = _Sent()
    execution_id = ctx.job_execution.id
    for d in decisions:
        if not d.send:
            continue
        notes = payloads(d, rule)
        e = d.enrollment
        if not notes:
            out.anomalies.append(
                {"inscriptionId": e.inscription_id, "raison": unreachable_reason(e)}
            )
            continue
        kind = d.alert.value
        out.ledger.append((e.inscription_id, e.doctorant_id, kind, now, d.months, execution_id))
        key = str(e.doctorant_id)
        out.events += [OutboxEvent(topic, key, n) for n in notes]
        out.counts[f"alertes.{kind}"] = out.counts.get(f"alertes.{kind}", 0) + 1
    return out


async def _side_by_side(
    first: Callable[[], Awaitable[dict[str, int]]],
    second: Callable[[], Awaitable[None]],
    together: bool,
) -> dict[str, int]:
    """Both calls, concurrently when ``together``; the first failure is raised.

    Both finish before this returns or raises: the unit of work's rollback must not run
    while a statement is still in flight on one of its connections.
    """
    if not together:
        alone = await first()
        await second()
        return alone
    counts, done = await asyncio.gather(first(), second(), return_exceptions=True)
    for result in (counts, done):
        if isinstance(result, BaseException):
            raise result
    assert not isinstance(counts, BaseException)
    return counts


@dataclass(frozen=True)
class _Owner:
    """inscription_db as the writer reaches it: its own transaction, or batchdb's.

    ``joins``: inscription_db is on batchdb's server under batchdb's account (MariaDB,
    :func:`~tranche.batch.uow.shared_schema`) and the job asks for one transaction per
    chunk: the owner's rows then run on batchdb's connection, schema-qualified, and commit
    with the ledger, the outbox and the checkpoint.
    """

    db: Database
    joins: bool
    joined_schema: str | None

    async def session(self, ctx: StepContext) -> AsyncSession:
        return await ctx.session(self.db.engine, join_checkpoint=self.joins)

    def schema(self, session: AsyncSession) -> str | None:
        """The database to name in a statement spelled by hand (joined: inscription_db's)."""
        return self.joined_schema if is_joined(session) else None


def _writer(
    owner: _Owner, topic: str, rule: AlertRule, zone: ZoneInfo, together: bool
) -> ItemWriter[AlertDecision]:
    """The chunk's writer.

    Joined (``owner.joins`` and a server that allows it), every statement runs in batchdb's
    one transaction, one after the other on its connection. Otherwise, with ``together``,
    the owner's rows (inscription_db) and the reminders (batchdb) are written side by side
    on their two connections: a chunk then waits for the longer of the two series of
    statements, not their sum. Their commits keep their order (inscription_db first,
    batchdb with the checkpoint last)."""

    async def write(decisions: Sequence[AlertDecision], ctx: StepContext) -> None:
        # The texts first (no I/O): the connections are then busy with statements only.
        sent = _reminders(decisions, ctx, topic, rule)

        async def send() -> None:
            # batchdb's transaction opens even with nothing to send: where the job-lock
            # fence is its first statement (SQLite), it then runs here, before anything
            # commits, not beside the owner's commit.
            batch = await ctx.session()
            if sent.ledger:
                await insert_rows(batch, alerte_duree_envoyee, _LEDGER_COLUMNS, sent.ledger)
                await enqueue_many(batch, sent.events)

        async def record() -> dict[str, int]:
            return await _record_owner_rows(decisions, ctx, owner, zone)

        # Joined, both series share one connection: in series, never side by side.
        counts = await _side_by_side(record, send, together and not owner.joins)
        counts.update(sent.counts)
        if sent.ledger:
            counts["notifications"] = len(sent.events)
        if sent.anomalies:
            counts["anomalies"] = len(sent.anomalies)
            known = list(ctx.job_context.get(ANOMALIES_KEY, []))
            ctx.job_context[ANOMALIES_KEY] = (known + sent.anomalies)[:_MAX_ANOMALIES]
        add_counts(ctx, counts)

    return write


def _separate(a: Database, b: Database) -> bool:
    """Whether two databases can take statements at the same time in one chunk.

    Not the same engine (one session), and not SQLite, where batchdb's transaction takes
    the file's write lock at its first statement (the fence).
    """
    engines = (a.engine.sync_engine, b.engine.sync_engine)
    return engines[0] is not engines[1] and all(e.dialect.name != "sqlite" for e in engines)


def build(
    batchdb: Database,
    inscription_db: Database,
    userdb: Database,
    defensedb: Database,
    rule: AlertRule,
    topic: str,
    chunk_size: int,
    cron: str,
    listeners: Sequence[BatchListener] = (),
    zone: ZoneInfo | None = None,
    policies: StepPolicies | None = None,
    one_transaction: bool = True,
) -> JobSpec:
    local = zone or ZoneInfo("UTC")
    rules = policies or StepPolicies(skip_limit=10)
    joins, schema = shared_schema(batchdb.engine, inscription_db.engine)
    owner = _Owner(inscription_db, one_transaction and joins, schema)

    def reader(ctx: StepContext) -> KeysetReader[Enrollment]:
        return enrollment_reader(
            inscription_db, batchdb, userdb, defensedb, run_at(ctx).astimezone(local).date(),
            max(chunk_size, READ_PAGE),
        )  # fmt: skip

    async def process(item: Enrollment) -> AlertDecision | None:
        return decide(item, rule)

    step = ChunkStep(
        "checkDureeDoctoratStep",
        reader=reader,
        processor=process,
        writer=_writer(owner, topic, rule, local, _separate(inscription_db, batchdb)),
        chunk_size=chunk_size,
        retry=rules.retry,
        skip=rules.skip,
        # The engine then fences the chunk by its checkpoint, in that one transaction.
        joined=inscription_db.engine if owner.joins else None,
    )

    async def estimate(_at: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(inscriptions)
            .where(
                inscriptions.c.statut == "VALIDE",
                inscriptions.c.date_premiere_inscription.is_not(None),
            )
        )
        async with inscription_db.sessions() as s:
            return int((await s.execute(query)).scalar_one())

    async def recount(ctx: StepContext) -> RepeatStatus:
        return await _recount(ctx, inscription_db)

    counted = TaskletStep("recountDureeDoctoratStep", recount, allow_start_if_complete=True)
    job = Job(JOB_NAME, [step, counted], listeners=listeners, description=DESCRIPTION)
    return JobSpec(job, cron, DESCRIPTION, estimate)
