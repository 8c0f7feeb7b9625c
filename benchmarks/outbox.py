"""Thin entry point: ``python benchmarks/outbox.py [options]`` = ``tranche bench outbox``."""

import typer

from tranche.bench.outbox import register

if __name__ == "__main__":
    app = typer.Typer()
    register(app)
    app()
