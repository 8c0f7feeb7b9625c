"""The report's charts, drawn with matplotlib's Agg backend into PNG bytes.

Only matplotlib's object API (``Figure`` + ``FigureCanvasAgg``) is used, never
``pyplot``: no global state, so reports can be drawn in worker threads. The
font is matplotlib's bundled DejaVu Sans, the one the PDF embeds too.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["bar_chart", "pie_chart"]

_BLUE, _GREY = "#1f4e79", "#a6b8cc"
_PALETTE = ("#1f4e79", "#c0392b", "#e6a23c", "#7f8c8d", "#27ae60", "#8e44ad")
_DPI = 150


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def bar_chart(
    title: str,
    labels: Sequence[str],
    current: Sequence[float],
    previous: Sequence[float],
    current_label: str,
    previous_label: str,
) -> bytes:
    """Grouped bars: this month beside the month before, one group per label."""
    figure = Figure(figsize=(7.0, 3.0))
    ax = figure.add_subplot()
    xs = range(len(labels))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], previous, width, label=previous_label, color=_GREY)
    bars = ax.bar([x + width / 2 for x in xs], current, width, label=current_label, color=_BLUE)
    ax.bar_label(bars, fmt="%d", fontsize=7, padding=2)
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, frameon=False)
    top = max([*current, *previous, 1])
    ax.set_ylim(0, top * 1.2)
    figure.tight_layout()
    return _png(figure)


def pie_chart(
    title: str, parts: Mapping[str, float], colors: Mapping[str, str] | None = None
) -> bytes:
    """Shares of a whole (``colors`` by part, e.g. failures in red); none at all says so."""
    figure = Figure(figsize=(4.2, 3.0))
    ax = figure.add_subplot()
    shown = {k: v for k, v in parts.items() if v > 0}
    if shown:
        ax.pie(
            list(shown.values()),
            labels=[f"{k} ({int(v)})" for k, v in shown.items()],
            colors=[
                (colors or {}).get(k, _PALETTE[i % len(_PALETTE)]) for i, k in enumerate(shown)
            ],
            autopct="%1.0f %%",
            startangle=90,
            counterclock=False,
            textprops={"fontsize": 7},
            wedgeprops={"linewidth": 1, "edgecolor": "white"},
        )
        ax.axis("equal")
    else:
        ax.text(0.5, 0.5, "Aucune donnée ce mois-ci", ha="center", va="center", fontsize=9)
        ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    figure.tight_layout()
    return _png(figure)
