"""``tranche doctoral seed-demo|token|audit-verify``: demo data, dev tokens, audit chain check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tranche.core.db import Database, dialect_of, redact
from tranche.core.jwt import issue_token
from tranche.core.logging import configure_logging
from tranche.core.service import migrate
from tranche.core.settings import SettingsError
from tranche.doctoral.app import SPEC
from tranche.doctoral.audit import verify_chain
from tranche.doctoral.auth import resolve_jwt_secret
from tranche.doctoral.seed import seed_portal
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import FOREIGN

__all__ = ["NAME", "app"]

NAME = "doctoral"
app = typer.Typer(no_args_is_help=True, help="Doctoral batch service: demo data, tokens, audit.")
console = Console()


def _settings() -> DoctoralSettings:
    try:
        return SPEC.load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("seed-demo")
def seed_demo(
    scale: Annotated[int, typer.Option(min=1, max=1000, help="50 x SCALE doctorants.")] = 1,
    allow_server_databases: Annotated[
        bool,
        typer.Option(
            "--allow-server-databases",
            help="Also write into non-SQLite databases (never a production portal's!).",
        ),
    ] = False,
) -> None:
    """Fill userdb, inscription_db, defensedb and notification_db with synthetic data (fr_FR).

    Creates the owners' tables where missing, so the jobs have work on a fresh setup.
    """
    settings = _settings()
    configure_logging("WARNING", json=False)
    urls = settings.database_urls()
    servers = [n for n in FOREIGN if dialect_of(urls[n]) != "sqlite"]
    if servers and not allow_server_databases:
        shown = ", ".join(f"{n} ({redact(urls[n])})" for n in servers)
        typer.echo(
            f"error: refusing to write demo data into server databases: {shown}; "
            "these belong to the portal's services. Pass --allow-server-databases for a "
            "disposable test server.",
            err=True,
        )
        raise typer.Exit(2)
    report = asyncio.run(
        seed_portal(urls, settings.pool(), scale, datetime.now(UTC), uploads=settings.uploads_root)
    )
    table = Table(title=f"seed-demo (scale {scale})")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for key, n in sorted(report.counts.items()):
        table.add_row(key, str(n))
    console.print(table)


@app.command()
def token(
    email: Annotated[str, typer.Option(help="The token's subject (sub).")] = "admin@localhost.dev",
    role: Annotated[list[str], typer.Option(help="Roles (repeatable).")] = ["ROLE_ADMIN"],  # noqa: B006
    hours: Annotated[float, typer.Option(min=0.01, max=24, help="Lifetime.")] = 1.0,
) -> None:
    """Print a token signed like user-service's, with JWT_SECRET (or the embedded one)."""
    settings = _settings()
    configure_logging("WARNING", json=False)  # warnings to stderr: stdout is just the token
    key = resolve_jwt_secret(settings)
    typer.echo(issue_token(key, email, role, settings.jwt_issuer, ttl=timedelta(hours=hours)))


@app.command("audit-verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 at the first row that does not match."""
    settings = _settings()
    configure_logging("WARNING", json=False)

    async def go() -> None:
        await migrate(SPEC, settings, sqlite_only=True)
        db = Database.open("batchdb", settings.database_urls()["batchdb"], settings.pool())
        try:
            report = await verify_chain(db)
        finally:
            await db.close()
        if report.ok:
            console.print(f"audit log intact: {report.rows} rows, head {report.head_hash}")
            return
        console.print(
            f"[bold red]audit log broken[/] at seq {report.broken_seq}: {report.reason} "
            f"({report.rows} rows verified before it)"
        )
        raise typer.Exit(1)

    asyncio.run(go())
