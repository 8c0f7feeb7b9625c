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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
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
from tranche.doctoral.reports.period import Month

__all__ = ["FONT", "FONT_BOLD", "SECTIONS", "ReportInput", "render_pdf"]

log = get_logger(__name__)

FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
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
_INK, _ACCENT, _LIGHT = colors.HexColor("#1b2631"), colors.HexColor("#1f4e79"), "#eaf0f6"
_MARGIN = 18 * mm
#: Tables set their cells' font even around flowables: never leave reportlab's Helvetica.
_FONT_ALL = ("FONTNAME", (0, 0), (-1, -1), FONT)


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)


@dataclass(frozen=True)
class ReportInput:
    month: Month
    stats: Mapping[str, Mapping[str, Any]]
    institution: str
    generated_at: datetime
    thresholds: Thresholds
    logo: Path | None = None


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, textColor=_INK)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
        "title": ParagraphStyle(
            "title", parent=base, fontName=FONT_BOLD, fontSize=18, leading=24, textColor=_ACCENT
        ),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=12.5,
            leading=16,
            spaceBefore=10,
            spaceAfter=4,
            textColor=_ACCENT,
        ),
        "kpi_value": ParagraphStyle(
            "kpi_value", parent=base, fontName=FONT_BOLD, fontSize=15, leading=18, alignment=1
        ),
        "kpi": ParagraphStyle("kpi", parent=base, fontSize=7.5, leading=9.5, alignment=TA_CENTER),
        "alert": ParagraphStyle("alert", parent=base, textColor=colors.HexColor("#922b21")),
    }


def _grid(rows: Sequence[Sequence[Any]], widths: Sequence[float], header: bool = True) -> Table:
    table = Table([list(r) for r in rows], colWidths=list(widths), repeatRows=1 if header else 0)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("TEXTCOLOR", (0, 0), (-1, -1), _INK),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8d3df")),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if header:
        style += [
            ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(_LIGHT)),
        ]
    table.setStyle(TableStyle(style))
    return table


def _breakdown(title: str, values: Mapping[str, Any], translate: bool = True) -> list[Any]:
    rows = [[title, "Nombre"]]
    rows += [[label(k) if translate else k, number(v)] for k, v in values.items()]
    if len(rows) == 1:
        rows.append(["Aucune donnée", "0"])
    return [_grid(rows, [110 * mm, 30 * mm]), Spacer(1, 3 * mm)]


def _figures(rows: Sequence[tuple[str, Any, Any]]) -> Table:
    body = [["Indicateur", "Ce mois", "Mois précédent"]]
    body += [[t, number(c), number(p)] for t, c, p in rows]
    return _grid(body, [100 * mm, 32 * mm, 38 * mm])


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
                _FONT_ALL,
            ]
        )
    )
    return table


def _cell(parts: list[Paragraph], width: float) -> Table:
    inner = Table([[p] for p in parts], colWidths=[width - 4 * mm])
    inner.setStyle(TableStyle([("TOPPADDING", (0, 0), (-1, -1), 1), _FONT_ALL]))
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


def _category_tables(data: ReportInput, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    s = data.stats

    def cp(cat: str, key: str) -> tuple[Any, Any]:
        return s[cat]["current"].get(key), s[cat]["previous"].get(key)

    out: list[Flowable] = []
    e = s["enrollments"]["current"]
    out += [Paragraph("Inscriptions", st["h1"])]
    out += [
        _figures(
            [
                ("Dossiers créés", *cp("enrollments", "created")),
                ("dont premières inscriptions", *cp("enrollments", "firstEnrollments")),
                ("dont réinscriptions", *cp("enrollments", "reEnrollments")),
                ("Inscriptions validées", *cp("enrollments", "validated")),
                (
                    "Délai médian création → validation (jours)",
                    *cp("enrollments", "medianDaysToValidation"),
                ),
                ("Inscriptions rejetées", *cp("enrollments", "rejected")),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    out += _breakdown("Dossiers créés par statut actuel", e["byStatus"])
    out += _breakdown("Par discipline", e["byDiscipline"], translate=False)
    out += _breakdown("Par laboratoire", e["byLaboratory"], translate=False)
    d = s["defenses"]["current"]
    out += [Paragraph("Soutenances", st["h1"])]
    out += [
        _figures(
            [
                ("Demandes de soutenance déposées", *cp("defenses", "requested")),
                ("Soutenances autorisées", *cp("defenses", "authorised")),
                ("Soutenances tenues", *cp("defenses", "held")),
                (
                    "Délai médian demande → soutenance (jours)",
                    *cp("defenses", "medianDaysRequestToDefense"),
                ),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    out += _breakdown("Soutenances tenues par mention", d["byMention"])
    n = s["notifications"]["current"]
    out += [Paragraph("Notifications", st["h1"])]
    out += [
        _figures(
            [
                ("Notifications créées", *cp("notifications", "total")),
                ("Envoyées", *cp("notifications", "sent")),
                ("En échec", *cp("notifications", "failed")),
                ("En attente (dont nouvel essai)", *cp("notifications", "pending")),
                ("Taux d'échec (%)", *cp("notifications", "failureRatePercent")),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    out += _breakdown("Par type", n["byType"], translate=False)
    u = s["users"]["current"]
    out += [Paragraph("Utilisateurs", st["h1"])]
    out += [
        _figures(
            [
                ("Comptes créés", *cp("users", "newAccounts")),
                ("Comptes verrouillés dans le mois", *cp("users", "lockedInMonth")),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    out += _breakdown("Comptes créés par rôle", u["newByRole"])
    now = [["À la génération du rapport", "Nombre"]]
    now += [["Comptes actifs", number(u["enabledNow"])]]
    now += [["Comptes verrouillés", number(u["lockedNow"])]]
    now += [[f"Rôle {label(k)}", number(v)] for k, v in u["byRoleNow"].items()]
    out += [_grid(now, [110 * mm, 30 * mm]), Spacer(1, 3 * mm)]
    out += [Paragraph("Durée des thèses", st["h1"])]
    out += [
        _figures(
            [
                (
                    "Doctorants inscrits (inscription validée)",
                    *cp("durations", "doctorantsInProgress"),
                ),
                ("Approchant 3 ans (≥ 2,5 ans)", *cp("durations", "near3Years")),
                ("Approchant 6 ans (≥ 5,5 ans)", *cp("durations", "near6Years")),
                ("Au-delà de 6 ans", *cp("durations", "over6Years")),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    return out


_DEFINITIONS = (
    "Un mois va du 1er à 00:00 au 1er du mois suivant à 00:00, à l'heure des services du portail.",
    "Dossiers créés : inscriptions dont la date de création tombe dans le mois, réparties par "
    "statut actuel, discipline et laboratoire (fiche thèse).",
    "Validées : inscriptions validées dans le mois ; le délai court de la création du dossier "
    "à sa validation (le portail ne conserve pas la date de dépôt). Rejetées : inscriptions "
    "dont le rejet est daté du mois.",
    "Soutenances : demandes déposées, autorisations accordées et soutenances tenues dans le mois.",
    "Taux d'échec : notifications en échec / (envoyées + en échec) ; celles encore en attente "
    "ne comptent pas.",
    "Durée des thèses, à la fin du mois : jours depuis la première inscription / 365,25 ; "
    "≥ 2,5 ans approche des 3 ans, ≥ 5,5 ans approche des 6 ans, ≥ 6 ans au-delà.",
    "Les effectifs « à la génération du rapport » sont ceux du jour de génération : le portail "
    "ne conserve pas leur historique.",
)


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
        self.setFillColor(_INK)
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
    _register_fonts()
    st = _styles()
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
        top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), _FONT_ALL]))
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
    story += _category_tables(data, st)
    story.append(Paragraph("Définitions", st["h1"]))
    story += [Paragraph(f"• {d}", st["small"]) for d in _DEFINITIONS]

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
