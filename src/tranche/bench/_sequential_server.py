"""The execution service on the original's sequential batch path, as a server of its own.

``python -m tranche.bench._sequential_server --port N`` (settings from the environment,
as ``tranche serve execution``): what ``tranche bench execution`` measures the bulk path
against over HTTP. The sequential writer is injected here, never by a setting, so no
production deployment can reach it. The database must already be migrated and
``KAFKA_BOOTSTRAP_SERVERS`` set (the bench does both).
"""

from __future__ import annotations

import argparse

from tranche.core.logging import configure_logging
from tranche.core.service import run_loop, run_server
from tranche.core.settings import load_settings
from tranche.execution.app import create_app
from tranche.execution.sequential import sequential_writer
from tranche.execution.settings import ExecutionSettings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings(ExecutionSettings)
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings, batch_writer=sequential_writer)
    run_loop(run_server(app, args.host, args.port))  # as tranche serve does


if __name__ == "__main__":
    main()
