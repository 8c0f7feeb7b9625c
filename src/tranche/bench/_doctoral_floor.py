"""The alert job's write floor: the rows it wrote, written again with raw SQL (not a job).

The issue's floor (one ``SELECT`` of the enrollments) leaves out everything the job
writes. This one writes the same rows — the owner's ``alertes_duree`` rows, the
re-enrollment blocks, the reminder ledger and the outbox events, read back from the run
— into empty copies of those tables (``CREATE TABLE … LIKE``: same columns and
indexes; MariaDB copies no foreign key), grouped by the job's chunks (its enrollments in
id order, ``chunk`` at a time). Every statement is spelled before the clock starts
(values as SQL literals, binary values as hex), so what is timed is the server and the
wire: per chunk one multi-row ``INSERT`` per table, the ``UPDATE`` of the blocks, and one
``COMMIT``, on one connection. The same statements in a single transaction show what the
chunks' commits cost on their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncmy
from sqlalchemy.engine import make_url

from tranche.core.outbox.enqueue import COPY_COLUMNS

__all__ = ["write_floor_lines", "write_floors"]

M = TypeVar("M")
_OWNER = ("inscription_id", "type", "date_alerte", "traite", "action")
_LEDGER = (
    "inscription_id",
    "doctorant_id",
    "type_alerte",
    "date_envoi",
    "mois_ecoules",
    "job_execution_id",
)
#: (database key, table, its copy's name) for each table the job writes.
_COPIES = (
    ("inscription_db", "alertes_duree", "floor_alertes_duree"),
    ("inscription_db", "inscriptions", "floor_inscriptions"),
    ("batchdb", "alerte_duree_envoyee", "floor_alerte_duree_envoyee"),
    ("batchdb", "outbox", "floor_outbox"),
)


def _literal(conn: Any, value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"X'{bytes(value).hex()}'"
    return str(conn.literal(value))


def _insert(conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    values = ", ".join("(" + ", ".join(_literal(conn, v) for v in row) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(f'`{c}`' for c in columns)}) VALUES {values}"


async def _rows(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    await cur.execute(sql)
    return list(await cur.fetchall())


async def _chunks(
    conn: Any, names: dict[str, str], chunk: int, topic: str
) -> tuple[list[list[str]], int]:
    """Per chunk of the job, the statements that write what it wrote (in copies)."""
    ins, batch = f"`{names['inscription_db']}`", f"`{names['batchdb']}`"
    async with conn.cursor() as cur:
        for key, table, copy in _COPIES:
            db = f"`{names[key]}`"
            await cur.execute(f"CREATE TABLE {db}.{copy} LIKE {db}.{table}")
        await cur.execute(f"INSERT INTO {ins}.floor_inscriptions SELECT * FROM {ins}.inscriptions")
        await cur.execute(f"UPDATE {ins}.floor_inscriptions SET bloque_re_inscription = 0")
        enrollments = await _rows(
            cur,
            f"SELECT id, doctorant_id FROM {ins}.inscriptions WHERE statut = 'VALIDE' "
            "AND date_premiere_inscription IS NOT NULL ORDER BY id",
        )
        owner = await _rows(cur, f"SELECT {', '.join(_OWNER)} FROM {ins}.alertes_duree")
        blocked = await _rows(
            cur, f"SELECT id FROM {ins}.inscriptions WHERE bloque_re_inscription = 1"
        )
        ledger = await _rows(cur, f"SELECT {', '.join(_LEDGER)} FROM {batch}.alerte_duree_envoyee")
        columns = ", ".join(f"`{c}`" for c in COPY_COLUMNS)
        events = await _rows(
            cur,
            f"SELECT {columns} FROM {batch}.outbox WHERE topic = {_literal(conn, topic)} "
            "ORDER BY seq",
        )
    await conn.commit()
    where = {int(e): i // chunk for i, (e, _d) in enumerate(enrollments)}
    by_doctorant = {str(d): where[int(e)] for e, d in enrollments}
    count = max(where.values(), default=-1) + 1
    parts: list[dict[str, list[Any]]] = [
        {"owner": [], "blocks": [], "ledger": [], "events": []} for _ in range(count)
    ]
    for row in owner:
        parts[where[int(row[0])]]["owner"].append(row)
    for (eid,) in blocked:
        parts[where[int(eid)]]["blocks"].append(int(eid))
    for row in ledger:
        parts[where[int(row[0])]]["ledger"].append(row)
    for row in events:
        parts[by_doctorant[str(row[2])]]["events"].append(row)
    out = []
    for p in parts:
        sql = []
        if p["owner"]:
            sql.append(_insert(conn, f"{ins}.floor_alertes_duree", _OWNER, p["owner"]))
        if p["blocks"]:
            ids = ",".join(map(str, p["blocks"]))
            sql.append(
                f"UPDATE {ins}.floor_inscriptions SET bloque_re_inscription = 1 "
                f"WHERE id IN ({ids}) AND bloque_re_inscription = 0"
            )
        if p["ledger"]:
            sql.append(_insert(conn, f"{batch}.floor_alerte_duree_envoyee", _LEDGER, p["ledger"]))
        if p["events"]:
            sql.append(_insert(conn, f"{batch}.floor_outbox", COPY_COLUMNS, p["events"]))
        out.append(sql)
    return out, len(enrollments)


async def _reset(conn: Any, names: dict[str, str]) -> None:
    ins, batch = f"`{names['inscription_db']}`", f"`{names['batchdb']}`"
    async with conn.cursor() as cur:
        for db, copy in (
            (ins, "floor_alertes_duree"),
            (batch, "floor_alerte_duree_envoyee"),
            (batch, "floor_outbox"),
        ):
            await cur.execute(f"TRUNCATE TABLE {db}.{copy}")
        await cur.execute(f"UPDATE {ins}.floor_inscriptions SET bloque_re_inscription = 0")
    await conn.commit()


async def write_floors(
    server: str,
    urls: dict[str, str],
    chunk: int,
    topic: str,
    timed: Callable[[str, Callable[[], Awaitable[int]]], Awaitable[M]],
) -> tuple[list[M], dict[str, int]]:
    """The two write floors (chunked, then one transaction) and what they write."""
    url = make_url(server)
    names = {k: str(make_url(v).database) for k, v in urls.items()}
    conn = await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=False,
    )
    try:
        chunks, enrollments = await _chunks(conn, names, chunk, topic)

        async def run(commit_each: bool) -> int:
            async with conn.cursor() as cur:
                for statements in chunks:
                    for sql in statements:
                        await cur.execute(sql)
                    if commit_each:
                        await conn.commit()
            await conn.commit()
            return enrollments

        name = f"same rows, raw SQL, one transaction per chunk of {chunk} (write floor)"
        measures = [await timed(name, lambda: run(True))]
        await _reset(conn, names)
        measures.append(await timed("same rows, raw SQL, one transaction", lambda: run(False)))
        return measures, {"chunks": len(chunks), "statements": sum(len(s) for s in chunks)}
    finally:
        conn.close()


def write_floor_lines(w: dict[str, Any]) -> list[str]:
    """The markdown sentence of the benchmark's ``alert_write_floor``."""
    return [
        "A second floor for the alert job: the rows it wrote (owner rows, blocks, ledger, "
        f"outbox events), written again with raw SQL spelled in advance, {w['statements']} "
        f"statements in {w['chunks']} transactions, one per chunk (then all in one): the job "
        f"takes **{w['job_over_chunked']:.1f}x** the chunked writes and "
        f"{w['job_over_one_transaction']:.1f}x the single transaction; the chunks' commits "
        f"are {w['commits_share_of_chunked']:.0%} of the chunked floor.",
    ]
