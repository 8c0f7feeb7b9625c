"""The anomaly report as a PDF (reportlab), written atomically.

The text is French with accents, which reportlab's built-in Helvetica cannot
always print; DejaVu Sans (shipped with matplotlib) is embedded instead. The
file is written to a temporary name in the reports directory, fsynced and
renamed, so the reports API never lists or serves a half-written report.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

__all__ = ["CheckSection", "render", "report_name", "write_atomically"]

FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"


@dataclass(frozen=True)
class CheckSection:
    title: str
    corrected: int
    manual: int
    rows: Sequence[tuple[str, str]]  # (record, action taken or needed)


def report_name(at: datetime) -> str:
    return f"anomaly_report_{at:%Y_%m_%d_%H%M%S}.pdf"


def _fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))


def render(at: datetime, job_execution_id: int, sections: Sequence[CheckSection]) -> bytes:
    _fonts()
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=FONT, fontSize=8, leading=10)
    title = ParagraphStyle("title", parent=base["Title"], fontName=FONT_BOLD)
    heading = ParagraphStyle("h2", parent=base["Heading2"], fontName=FONT_BOLD)
    buffer = BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        title="Rapport d'anomalies",
        author="batch-service (dataConsistencyJob)",
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
    )
    total_fixed = sum(s.corrected for s in sections)
    total_manual = sum(s.manual for s in sections)
    story: list[object] = [
        Paragraph("Rapport d'anomalies — cohérence des données", title),
        Paragraph(
            f"Vérification du {at:%d/%m/%Y à %H:%M:%S} UTC (exécution {job_execution_id}) : "
            f"{total_fixed + total_manual} anomalie(s), {total_fixed} corrigée(s) "
            f"automatiquement, {total_manual} nécessitant une intervention.",
            body,
        ),
        Spacer(1, 0.4 * cm),
    ]
    summary = [["Type", "Nombre", "Corrigées", "À traiter"]] + [
        [Paragraph(escape(s.title), body), s.corrected + s.manual, s.corrected, s.manual]
        for s in sections
    ]
    story.append(_table(summary, [14 * cm, 3 * cm, 3 * cm, 3 * cm]))
    for s in sections:
        story += [Spacer(1, 0.5 * cm), Paragraph(escape(s.title), heading)]
        rows = [["Enregistrement", "Action corrective (effectuée ou nécessaire)"]]
        rows += [[Paragraph(escape(r), body), Paragraph(escape(a), body)] for r, a in s.rows]
        shown = len(s.rows)
        if shown < s.corrected + s.manual:
            rows.append([Paragraph(f"… et {s.corrected + s.manual - shown} autre(s)", body), ""])
        story.append(_table(rows, [12 * cm, 14.5 * cm]))
    doc.build(story)
    return buffer.getvalue()


def _table(rows: Sequence[Sequence[object]], widths: list[float]) -> Table:
    table = Table([list(r) for r in rows], colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
                ("FONTNAME", (0, 1), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def write_atomically(directory: Path, name: str, content: bytes) -> Path:
    """``directory/name`` holding ``content``, never visible half-written."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        target = directory / name
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target
