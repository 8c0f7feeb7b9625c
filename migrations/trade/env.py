"""Alembic environment of the trade service's own database."""

from alembic import context

from tranche.core.migrations import run_env

run_env(context)
