"""monthlyReportJob end to end up to the PDF: statistics in the context, a PDF people can open.

The PDF is opened with pypdf: every section heading, the French title, the
figures of the fixed data set, embedded fonts only, « page N / M » on each
page; a month without activity says so; a re-run replaces the file. Page 1 is
rendered with poppler's ``pdftoppm``, as a reader's viewer would.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pypdf import PdfReader

from tests.doctoral.harness import Databases
from tests.doctoral.report_fixtures import fresh_portal, report_settings, seeded
from tranche.batch import BatchStatus, JobParameters
from tranche.doctoral.jobs import monthly_report as MR
from tranche.doctoral.reports.pdf import SECTIONS
from tranche.doctoral.reports.storage import ReportStore
from tranche.doctoral.runtime import Runtime

__all__ = ["fresh_portal", "seeded"]


def _text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


async def run_month(runtime: Runtime, month: str) -> Any:
    params = JobParameters({**runtime.parameters("pytest"), MR.MONTH: month})
    return await runtime.launcher.run(runtime.spec(MR.JOB_NAME).job, params)


@pytest.fixture
async def report_runtime(seeded: Databases, tmp_path: Path) -> Any:
    """Builds runtimes on the seeded portal, reports in ``tmp_path/reports``; closes them after."""
    made: list[Runtime] = []

    async def make(**overrides: Any) -> Runtime:
        runtime = Runtime.build(report_settings(seeded, tmp_path, **overrides), CollectorRegistry())
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.close()


async def test_february_report(report_runtime: Any, tmp_path: Path) -> None:
    runtime = await report_runtime()
    execution = await run_month(runtime, "2025-02")
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    ctx = execution.context
    assert ctx[MR.MONTH_KEY] == "2025-02"
    assert ctx["stats.enrollments"]["current"]["validated"] == 3
    assert ctx["stats.enrollments"]["previous"]["rejected"] == 1
    assert ctx["stats.durations"]["current"]["over6Years"] == 2
    path = tmp_path / "reports" / "rapport_2025_02.pdf"
    assert Path(ctx[MR.REPORT_KEY]["path"]) == path
    assert ctx[MR.REPORT_KEY]["sizeBytes"] == path.stat().st_size

    reader = PdfReader(path)
    text = _text(path)
    assert "Rapport mensuel — février 2025" in text
    assert "École doctorale Sciences et Techniques" in text
    for heading in SECTIONS:
        assert heading in text, heading
    # Figures of the fixed data set, with their French labels.
    assert "Taux d'échec des notifications" in text and "28,57" in text
    assert "Délai médian création → validation (jours)" in text
    assert re.search(r"Inscriptions validées\s+3\s+0", text), "validated: 3 now, 0 in January"
    assert re.search(r"Au-delà de 6 ans\s+2\s+1", text)
    assert "Très honorable" in text and "Informatique" in text and "LRIT" in text
    # Thresholds crossed: failure rate 28.57 % > 10 %, 2 doctorants past 6 years > 0.
    assert "Taux d'échec des notifications de 28,57" in text
    assert "2 doctorant(s) au-delà de 6 ans" in text
    n = len(reader.pages)
    assert n >= 2
    for i, page in enumerate(reader.pages, start=1):
        assert f"page {i} / {n}" in (page.extract_text() or "")
        assert "généré le" in (page.extract_text() or "")
    fonts = _fonts(reader)
    assert fonts and all(embedded for embedded in fonts.values()), fonts
    assert reader.metadata is not None and reader.metadata.title == "Rapport mensuel — février 2025"


def _fonts(reader: PdfReader) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor else {}
            found[str(font["/BaseFont"])] = any(
                k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    return found


async def test_empty_month_says_so_and_rerun_replaces(report_runtime: Any, tmp_path: Path) -> None:
    runtime = await report_runtime(report_alert_over_6_years=5)
    first = await run_month(runtime, "2024-06")
    assert first.status is BatchStatus.COMPLETED, first.exit_status
    path = tmp_path / "reports" / "rapport_2024_06.pdf"
    text = _text(path)
    assert "Aucune activité enregistrée pour ce mois" in text
    assert "Aucune donnée ce mois-ci" not in text  # drawn in the chart image, not as text
    assert "Aucun seuil d'alerte n'est franchi ce mois-ci." in text
    assert first.context["stats.notifications"]["current"]["total"] == 0
    before = path.stat().st_mtime_ns
    second = await run_month(runtime, "2024-06")
    assert second.status is BatchStatus.COMPLETED
    assert path.stat().st_mtime_ns >= before
    assert [f.name for f in ReportStore(path.parent).list()].count("rapport_2024_06.pdf") == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temp files left"


async def test_bad_month_parameter_fails_clearly(report_runtime: Any) -> None:
    runtime = await report_runtime()
    execution = await run_month(runtime, "2025-13")
    assert execution.status is BatchStatus.FAILED
    assert "month must be YYYY-MM" in execution.exit_status.exit_description


async def test_page_one_renders_with_pdftoppm(report_runtime: Any, tmp_path: Path) -> None:
    binary = shutil.which("pdftoppm")
    if binary is None:
        reason = "pdftoppm (Debian poppler-utils) is not installed; scripts/bootstrap.sh adds it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: required)")
        pytest.skip(reason)
    runtime = await report_runtime()
    execution = await run_month(runtime, "2025-02")
    assert execution.status is BatchStatus.COMPLETED
    pdf = tmp_path / "reports" / "rapport_2025_02.pdf"
    out = tmp_path / "page"
    await asyncio.to_thread(
        subprocess.run,
        [binary, "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    png = out.with_suffix(".png")
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert abs(width - 496) <= 1 and abs(height - 702) <= 1  # A4 (210 x 297 mm) at 60 dpi
    if os.environ.get("TRANCHE_REPORT_SAMPLE"):
        await asyncio.to_thread(
            subprocess.run,
            [
                binary,
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                os.environ["TRANCHE_REPORT_SAMPLE"],
            ],
            check=True,
            timeout=60,
        )


async def test_scheduled_run_reports_on_the_previous_month_in_batch_timezone(
    report_runtime: Any,
) -> None:
    from datetime import UTC, datetime

    from tranche.batch import BatchSettings

    runtime = await report_runtime(
        batch=BatchSettings(scheduler_enabled=False, timezone="Europe/Paris")
    )
    # 1 March 00:30 in Paris is still 28 February in UTC: the report is February's.
    at = datetime(2025, 2, 28, 23, 30, tzinfo=UTC)
    execution = await runtime.launcher.run(
        runtime.spec(MR.JOB_NAME).job, runtime.parameters("scheduler", at=at)
    )
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert execution.context[MR.MONTH_KEY] == "2025-02"


async def test_logo_in_the_header_and_an_unreadable_one_left_out(
    report_runtime: Any, tmp_path: Path
) -> None:
    from tranche.doctoral.reports.charts import pie_chart

    logo = tmp_path / "logo.png"
    logo.write_bytes(pie_chart("Logo", {"a": 1.0}))
    with_logo = await report_runtime(report_logo_path=logo)
    assert (await run_month(with_logo, "2024-11")).status is BatchStatus.COMPLETED
    pdf = tmp_path / "reports" / "rapport_2024_11.pdf"
    logo_images = sum(len(p.images) for p in PdfReader(pdf).pages)
    assert logo_images == 3  # the logo, the bar chart, the pie chart

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    without = await report_runtime(report_logo_path=broken)
    execution = await run_month(without, "2024-11")
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert sum(len(p.images) for p in PdfReader(pdf).pages) == logo_images - 1
