"""Alembic environment of the execution service's own database."""

from alembic import context

from tranche.core.migrations import run_env

run_env(context)
