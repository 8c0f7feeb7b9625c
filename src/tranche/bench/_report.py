"""Writes one benchmark's section of ``docs/benchmarks.md`` without touching the others.

Each section sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
a run replaces its own section (or appends it) so benchmarks can be re-run in
any order.
"""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["machine_line", "write_section"]

HEADER = """# Benchmarks

Numbers from `tranche bench …` on the development machine. Each section is
rewritten by its command; re-run it to refresh. Ratios are from one run, so
both sides of a ratio saw the same machine state.
"""


def machine_line() -> str:
    import psutil  # the ``demo`` extra: benchmarks only, so imported when one runs

    cpus = psutil.cpu_count(logical=True)
    mem = psutil.virtual_memory().total / 2**30
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"_{when} · {py} · {cpus} CPUs · {mem:.0f} GiB_"


def write_section(name: str, markdown: str, path: Path = Path("docs/benchmarks.md")) -> Path:
    text = path.read_text() if path.exists() else HEADER
    block = f"<!-- bench:{name} -->\n{markdown.strip()}\n<!-- /bench:{name} -->"
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _m: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
