"""The monthly report as a PDF (reportlab platypus), in French, with embedded fonts.

Layout: a header on every page (institution, logo when configured), the title
« Rapport mensuel — <mois> <année> », the KPI dashboard (each figure with its
change against the previous month), a bar and a pie chart, the « Alertes »
section, one table per category, the definitions, and a footer on every page
with the generation time and « page N / M » (a two-pass canvas: the total is
known only once every page is laid out). Every glyph is drawn in DejaVu Sans,
whose TTF files ship with matplotlib, embedded as subsets: the file prints the
same everywhere and needs no font installed on the reader's machine.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from tranche.core.logging import get_logger
from tranche.doctoral.reports import charts
from tranche.doctoral.reports.content import (
    Thresholds,
    alerts,
    change_text,
    is_empty,
    kpis,
    label,
    number,
)
from tranche.doctoral.reports.pdf_tables import (
    DEFINITIONS,
    FONT,
    FONT_ALL,
    FONT_BOLD,
    INK,
    category_tables,
    register_fonts,
    styles,
)
from tranche.doctoral.reports.period import Month

__all__ = ["FONT", "FONT_BOLD", "SECTIONS", "ReportInput", "render_pdf"]

log = get_logger(__name__)

#: Section headings, in order (tests and readers look for them).
SECTIONS = (
    "Tableau de bord",
    "Graphiques",
    "Alertes",
    "Inscriptions",
    "Soutenances",
    "Notifications",
    "Utilisateurs",
    "Durée des thèses",
    "Définitions",
)
_MARGIN = 18 * mm


@dataclass(frozen=True)
class ReportInput:
    month: Month
    stats: Mapping[str, Mapping[str, Any]]
    institution: str
    generated_at: datetime
    thresholds: Thresholds
    logo: Path | None = None


def _dashboard(data: ReportInput, st: dict[str, ParagraphStyle]) -> Table:
    cells = []
    for k in kpis(data.stats):
        cells.append(
            [
                Paragraph(number(k.current, k.unit), st["kpi_value"]),
                Paragraph(k.title, st["kpi"]),
                Paragraph(change_text(k), st["kpi"]),
            ]
        )
    width = (A4[0] - 2 * _MARGIN) / 3
    rows = [cells[i : i + 3] for i in range(0, len(cells), 3)]
    table = Table(
        [[_cell(c, width) for c in row] for row in rows],
        colWidths=[width] * 3,
    )
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, colors.HexColor("#c8d3df")),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#c8d3df")),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f7f9fb")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                FONT_ALL,
            ]
        )
    )
    return table


def _cell(parts: list[Paragraph], width: float) -> Table:
    inner = Table([[p] for p in parts], colWidths=[width - 4 * mm])
    inner.setStyle(TableStyle([("TOPPADDING", (0, 0), (-1, -1), 1), FONT_ALL]))
    return inner


_STATUS_COLORS = {
    "SENT": "#27ae60",
    "FAILED": "#c0392b",
    "PENDING": "#e6a23c",
    "RETRYING": "#7f8c8d",
}


def _charts(data: ReportInput) -> list[Flowable]:
    cur = {c: v.get("current", {}) for c, v in data.stats.items()}
    prev = {c: v.get("previous", {}) for c, v in data.stats.items()}
    bars = (
        ("Premières\ninscriptions", "enrollments", "firstEnrollments"),
        ("Réinscriptions", "enrollments", "reEnrollments"),
        ("Validées", "enrollments", "validated"),
        ("Rejetées", "enrollments", "rejected"),
        ("Soutenances\ndemandées", "defenses", "requested"),
        ("Soutenances\ntenues", "defenses", "held"),
        ("Nouveaux\ncomptes", "users", "newAccounts"),
    )
    bar = charts.bar_chart(
        "Activité du mois",
        [b[0] for b in bars],
        [float(cur.get(c, {}).get(k, 0)) for _, c, k in bars],
        [float(prev.get(c, {}).get(k, 0)) for _, c, k in bars],
        data.month.label,
        data.month.previous.label,
    )
    statuses = cur.get("notifications", {}).get("byStatus", {})
    pie = charts.pie_chart(
        "Notifications par statut",
        {label(k): float(v) for k, v in statuses.items()},
        {label(k): c for k, c in _STATUS_COLORS.items()},
    )
    full = A4[0] - 2 * _MARGIN
    return [
        Image(io.BytesIO(bar), width=full, height=full * 3 / 7),
        Spacer(1, 2 * mm),
        Image(io.BytesIO(pie), width=full * 0.6, height=full * 0.6 * 3 / 4.2),
    ]


class _NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no type hints
    """Holds each page until the end, then stamps the footer with « page N / M »."""

    def __init__(self, *args: Any, footer: str = "", header: str = "", **kw: Any) -> None:
        # Otherwise every page starts in (non-embedded) Helvetica.
        kw["initialFontName"] = FONT
        super().__init__(*args, **kw)
        self._pages: list[dict[str, Any]] = []
        self._footer, self._header = footer, header

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for n, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._decorate(n, total)
            super().showPage()
        super().save()

    def _decorate(self, page: int, total: int) -> None:
        width, height = A4
        self.setStrokeColor(colors.HexColor("#c8d3df"))
        self.setLineWidth(0.5)
        self.line(_MARGIN, height - 14 * mm, width - _MARGIN, height - 14 * mm)
        self.line(_MARGIN, 13 * mm, width - _MARGIN, 13 * mm)
        self.setFillColor(INK)
        self.setFont(FONT_BOLD, 8.5)
        self.drawString(_MARGIN, height - 12 * mm, self._header)
        self.setFont(FONT, 7.5)
        self.drawString(_MARGIN, 9 * mm, self._footer)
        self.drawRightString(width - _MARGIN, 9 * mm, f"page {page} / {total}")


def _logo(path: Path | None) -> Flowable | None:
    if path is None:
        return None
    try:
        # reportlab reads images lazily (at layout): decode now, while a failure is harmless.
        width, height = ImageReader(str(path)).getSize()
        image = Image(str(path))
    except Exception as exc:  # unreadable or not an image: the report goes out without it
        log.warning(
            "report_logo_unusable", path=str(path), error=f"{type(exc).__name__}: {exc}"[:300]
        )
        return None
    ratio = height / width if width else 1.0
    image.drawWidth, image.drawHeight = 30 * mm, 30 * mm * ratio
    if image.drawHeight > 22 * mm:
        image.drawWidth, image.drawHeight = 22 * mm / ratio, 22 * mm
    return image


def render_pdf(data: ReportInput) -> bytes:
    """The report's bytes (CPU-bound: call it in a worker thread)."""
    register_fonts()
    st = styles()
    title = f"Rapport mensuel — {data.month.label}"
    story: list[Flowable] = []
    heading: list[Any] = [
        Paragraph(data.institution, st["h1"]),
        Paragraph(title, st["title"]),
        Paragraph(
            f"Période : du 1er {data.month.label} au {data.month.end.day}er "
            f"{data.month.next.label} (exclu)",
            st["small"],
        ),
    ]
    logo = _logo(data.logo)
    if logo is not None:
        top = Table([[heading, logo]], colWidths=[A4[0] - 2 * _MARGIN - 34 * mm, 34 * mm])
        top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), FONT_ALL]))
        story.append(top)
    else:
        story += heading
    story.append(Spacer(1, 4 * mm))
    if is_empty(data.stats):
        story.append(
            Paragraph(
                "Aucune activité enregistrée pour ce mois : tous les indicateurs du mois sont à "
                "zéro.",
                st["alert"],
            )
        )
    story += [Paragraph("Tableau de bord", st["h1"]), _dashboard(data, st)]
    story += [Paragraph("Graphiques", st["h1"]), *_charts(data)]
    found = alerts(data.stats, data.thresholds)
    block: list[Flowable] = [Paragraph("Alertes", st["h1"])]
    if found:
        block += [Paragraph(f"• {a}", st["alert"]) for a in found]
    else:
        block.append(Paragraph("Aucun seuil d'alerte n'est franchi ce mois-ci.", st["body"]))
    story.append(KeepTogether(block))
    story += category_tables(data.stats, st)
    story.append(Paragraph("Définitions", st["h1"]))
    story += [Paragraph(f"• {d}", st["small"]) for d in DEFINITIONS]

    out = io.BytesIO()
    generated = data.generated_at.strftime("%d/%m/%Y à %H:%M")
    footer = f"{data.institution} · généré le {generated} ({data.generated_at:%Z})"
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=20 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=data.institution,
        subject=f"Rapport mensuel de l'école doctorale, {data.month.label}",
        creator="tranche batch-service",
        lang="fr-FR",
        initialFontName=FONT,
    )
    doc.build(
        story,
        canvasmaker=lambda *a, **kw: _NumberedCanvas(
            *a, footer=footer, header=f"{data.institution} — {title}", **kw
        ),
    )
    return out.getvalue()
