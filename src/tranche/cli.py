"""The ``tranche`` command: serve, db, demo, and the groups each area adds (outbox, bench, job…)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from tranche import __version__
from tranche.commands import LazyGroups
from tranche.core.logging import configure_logging
from tranche.core.service import embedded_broker, migrate, run_loop, run_server
from tranche.core.settings import SettingsError
from tranche.services import SERVICE_MODULES, get_service

__all__ = ["app", "main"]

app = typer.Typer(cls=LazyGroups, no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Schema migrations of the databases we own.")
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tranche {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """tranche: execution, trade and doctoral batch services."""


def _spec_and_settings(service: str, **overrides: Any) -> tuple[Any, Any]:
    try:
        spec = get_service(service)
        return spec, spec.load_settings(**overrides)
    except (KeyError, SettingsError) as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICE_MODULES)}")],
    host: Annotated[str | None, typer.Option(help="Bind address (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: the service's).")] = None,
) -> None:
    """Run one service. Embedded SQLite databases are migrated first; with no
    KAFKA_BOOTSTRAP_SERVERS an embedded broker is started beside it."""
    spec, settings = _spec_and_settings(service)
    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        if not spec.uses_kafka:
            await migrate(spec, settings, sqlite_only=True)
            app = spec.create_app(settings)
            await run_server(app, host or settings.host, port or settings.port)
            return
        async with embedded_broker(settings.kafka, settings.data_dir) as kafka:
            cfg = settings.model_copy(update={"kafka": kafka})
            await migrate(spec, cfg, sqlite_only=True)
            await run_server(spec.create_app(cfg), host or cfg.host, port or cfg.port)

    run_loop(run())


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help="Service whose databases to migrate.")],
) -> None:
    """Bring the service's own databases to the latest schema."""
    spec, settings = _spec_and_settings(service)
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(migrate(spec, settings, sqlite_only=False))
    typer.echo(f"{service}: databases at head")


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's data directory.")] = False,
) -> None:
    """Run every service end to end on embedded defaults and print what happened."""
    from tranche.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(keep=keep)))


def main() -> None:
    app()
