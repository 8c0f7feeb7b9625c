"""The report's typography and its per-category tables (split from :mod:`.pdf` for size).

Every style and table names DejaVu Sans explicitly: reportlab falls back to its
built-in, non-embedded Helvetica wherever a font is left unset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from tranche.doctoral.reports.content import label, number

__all__ = [
    "ACCENT",
    "DEFINITIONS",
    "FONT",
    "FONT_ALL",
    "FONT_BOLD",
    "INK",
    "breakdown",
    "category_tables",
    "figures",
    "grid",
    "register_fonts",
    "styles",
]

FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"


def register_fonts() -> None:
    """Embed DejaVu Sans (shipped with matplotlib) in reportlab, once per process:
    the built-in Helvetica cannot print every French accent, and an embedded font
    prints the same everywhere."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)


INK, ACCENT, _LIGHT = colors.HexColor("#1b2631"), colors.HexColor("#1f4e79"), "#eaf0f6"
#: Tables set their cells' font even around flowables: never leave reportlab's Helvetica.
FONT_ALL = ("FONTNAME", (0, 0), (-1, -1), FONT)


def styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, textColor=INK)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
        "title": ParagraphStyle(
            "title", parent=base, fontName=FONT_BOLD, fontSize=18, leading=24, textColor=ACCENT
        ),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontName=FONT_BOLD,
            fontSize=12.5,
            leading=16,
            spaceBefore=10,
            spaceAfter=4,
            textColor=ACCENT,
        ),
        "kpi_value": ParagraphStyle(
            "kpi_value", parent=base, fontName=FONT_BOLD, fontSize=15, leading=18, alignment=1
        ),
        "kpi": ParagraphStyle("kpi", parent=base, fontSize=7.5, leading=9.5, alignment=TA_CENTER),
        "alert": ParagraphStyle("alert", parent=base, textColor=colors.HexColor("#922b21")),
    }


def grid(rows: Sequence[Sequence[Any]], widths: Sequence[float], header: bool = True) -> Table:
    table = Table([list(r) for r in rows], colWidths=list(widths), repeatRows=1 if header else 0)
    style = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
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


def breakdown(title: str, values: Mapping[str, Any], translate: bool = True) -> list[Any]:
    rows = [[title, "Nombre"]]
    rows += [[label(k) if translate else k, number(v)] for k, v in values.items()]
    if len(rows) == 1:
        rows.append(["Aucune donnée", "0"])
    return [grid(rows, [110 * mm, 30 * mm]), Spacer(1, 3 * mm)]


def figures(rows: Sequence[tuple[str, Any, Any]]) -> Table:
    body = [["Indicateur", "Ce mois", "Mois précédent"]]
    body += [[t, number(c), number(p)] for t, c, p in rows]
    return grid(body, [100 * mm, 32 * mm, 38 * mm])


def category_tables(
    s: Mapping[str, Mapping[str, Any]], st: dict[str, ParagraphStyle]
) -> list[Flowable]:
    """One table per category (figures this month and last, then breakdowns)."""

    def cp(cat: str, key: str) -> tuple[Any, Any]:
        return s[cat]["current"].get(key), s[cat]["previous"].get(key)

    out: list[Flowable] = []
    e = s["enrollments"]["current"]
    out += [Paragraph("Inscriptions", st["h1"])]
    out += [
        figures(
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
    out += breakdown("Dossiers créés par statut actuel", e["byStatus"])
    out += breakdown("Par discipline", e["byDiscipline"], translate=False)
    out += breakdown("Par laboratoire", e["byLaboratory"], translate=False)
    d = s["defenses"]["current"]
    out += [Paragraph("Soutenances", st["h1"])]
    out += [
        figures(
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
    out += breakdown("Soutenances tenues par mention", d["byMention"])
    n = s["notifications"]["current"]
    out += [Paragraph("Notifications", st["h1"])]
    out += [
        figures(
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
    out += breakdown("Par type", n["byType"], translate=False)
    u = s["users"]["current"]
    out += [Paragraph("Utilisateurs", st["h1"])]
    out += [
        figures(
            [
                ("Comptes créés", *cp("users", "newAccounts")),
                ("Comptes verrouillés dans le mois", *cp("users", "lockedInMonth")),
            ]
        ),
        Spacer(1, 3 * mm),
    ]
    out += breakdown("Comptes créés par rôle", u["newByRole"])
    now = [["À la génération du rapport", "Nombre"]]
    now += [["Comptes actifs", number(u["enabledNow"])]]
    now += [["Comptes verrouillés", number(u["lockedNow"])]]
    now += [[f"Rôle {label(k)}", number(v)] for k, v in u["byRoleNow"].items()]
    out += [grid(now, [110 * mm, 30 * mm]), Spacer(1, 3 * mm)]
    out += [Paragraph("Durée des thèses", st["h1"])]
    out += [
        figures(
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


DEFINITIONS = (
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
