"""The anomaly report as a PDF (reportlab), written atomically.

The text is French with accents, which reportlab's built-in Helvetica cannot
always print; DejaVu Sans (shipped with matplotlib) is embedded instead. The
file is written by the reports store (`reports.storage.ReportStore`: temporary name,
fsync, rename), so the reports API never lists or serves a half-written report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tranche.doctoral.reports.pdf_tables import FONT, FONT_BOLD, register_fonts

__all__ = ["CheckSection", "render", "report_name"]


@dataclass(frozen=True)
class CheckSection:
    title: str
    corrected: int
    manual: int
    rows: Sequence[tuple[str, str]]  # (record, action taken or needed)


def report_name(at: datetime) -> str:
    return f"anomaly_report_{at:%Y_%m_%d_%H%M%S}.pdf"


def render(at: datetime, job_execution_id: int, sections: Sequence[CheckSection]) -> bytes:
    register_fonts()
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
