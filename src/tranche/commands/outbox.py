"""``tranche outbox status|replay``: inspect a service's outbox and re-queue dead events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from tranche.core.db import Database, redact
from tranche.core.outbox import OutboxStatusReport, outbox_status, replay_dead
from tranche.core.settings import PoolSettings, SettingsError
from tranche.services import get_service

__all__ = ["NAME", "app"]

NAME = "outbox"
app = typer.Typer(
    no_args_is_help=True,
    help="A service's transactional outbox: counts per topic, re-queue dead events.",
)

T = TypeVar("T")

ServiceOpt = Annotated[
    str | None, typer.Option("--service", help="Service whose outbox to use (its settings).")
]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Database URL holding the outbox table.")]
_POOL = PoolSettings(pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=-1)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _url(service: str | None, url: str | None) -> str:
    if (service is None) == (url is None):
        raise _fail("give exactly one of --service NAME or --url URL")
    if url is not None:
        return url
    assert service is not None
    try:
        spec = get_service(service)
        settings = spec.load_settings()
    except (KeyError, SettingsError) as exc:
        raise _fail(str(exc.args[0])) from None
    if spec.outbox_url is None:
        raise _fail(f"service '{service}' has no outbox")
    return str(spec.outbox_url(settings))


def _run(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database.open("outbox-cli", url, _POOL)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(go())
    except (DBAPIError, OSError) as exc:
        # The driver's message says what is wrong (no such table, refused connection);
        # the URL is shown without its password.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:300]
        if "outbox" in reason and any(
            w in reason for w in ("no such table", "does not exist", "doesn't exist")
        ):
            reason += " (not migrated yet? run: tranche db upgrade SERVICE)"
        raise _fail(f"{redact(url)}: {reason}", 1) from None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _print_report(report: OutboxStatusReport) -> None:
    table = Table(title="outbox")
    for col in ("topic", "pending", "oldest pending", "sent", "dead", "last dead error"):
        table.add_column(col, justify="right" if col in ("pending", "sent", "dead") else "left")
    for s in report.topics:
        table.add_row(
            s.topic,
            str(s.pending),
            _age(s.oldest_pending_age_s),
            str(s.sent),
            str(s.dead),
            (s.last_dead_error or "")[:80],
        )
    Console().print(table)
    typer.echo(f"pending {report.pending} · dead {report.dead}")


@app.command()
def status(
    service: ServiceOpt = None,
    url: UrlOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts per topic and status, and the age of the oldest PENDING event."""
    report = _run(_url(service, url), outbox_status)
    if json_out:
        typer.echo(orjson.dumps(report.as_dict()).decode())
    else:
        _print_report(report)


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        value = datetime.fromisoformat(since)
    except ValueError:
        raise _fail(f"--since: {since!r} is not an ISO-8601 timestamp") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command()
def replay(
    service: ServiceOpt = None,
    url: UrlOpt = None,
    topic: Annotated[str | None, typer.Option(help="Only events of this topic.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only events created at or after this ISO-8601 time (UTC if no zone)."),
    ] = None,
) -> None:
    """Re-queue DEAD events as PENDING (attempts start again); the relays send them."""
    when = _parse_since(since)
    target = _url(service, url)

    async def work(db: Database) -> Any:
        return await replay_dead(db, topic=topic, since=when)

    count = _run(target, work)
    scope = f" of topic {topic}" if topic else ""
    scope += f" created since {when.isoformat()}" if when else ""
    typer.echo(f"re-queued {count} dead event{'s' if count != 1 else ''}{scope}")
