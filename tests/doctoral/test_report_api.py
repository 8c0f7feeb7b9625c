"""``/api/batch/reports``: the listing, the download, and never a byte from outside the directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.doctoral.factories import admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import auth, serving
from tranche.doctoral.models import audit_log

SECRET_TEXT = b"root:x:0:0:the-secret-outside-the-reports-directory"
PDF = b"%PDF-1.4\n" + b"x" * 200_000 + b"\n%%EOF\n"  # several stream chunks

ATTEMPTS = [
    # (path after /api/batch/reports/, statuses allowed)
    ("..%2f..%2fsecret.txt/download", {400, 404}),
    ("%2e%2e%2fsecret.txt/download", {400, 404}),
    ("..%5csecret.txt/download", {400}),
    ("%2e%2e%5csecret.txt/download", {400}),
    ("..%252f..%252fsecret.txt/download", {400}),
    ("%252e%252e%252fsecret.txt/download", {400}),
    ("%2Fetc%2Fpasswd/download", {400, 404}),
    ("..%2fsecret.pdf/download", {400, 404}),
    ("../secret.txt/download", {400, 404}),
    ("secret.txt/download", {400}),
    ("notes.pdf/download", {400}),
    ("rapport_2025_02.PDF/download", {400}),
    ("rapport_2025_02.pdf.txt/download", {400}),
    ("rapport_2025_13.pdf/download", {400}),
    ("rapport_2025_02.pdf%00.txt/download", {400}),
    ("rapport_2025_03.pdf/download", {404}),  # a symlink to the secret, outside
    ("rapport_2025_04.pdf/download", {404}),  # well-formed, missing
]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    directory = tmp_path / "reports"
    directory.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_bytes(SECRET_TEXT)
    (tmp_path / "secret.pdf").write_bytes(SECRET_TEXT)
    files = {
        "rapport_2025_01.pdf": 1_700_000_000,
        "anomaly_report_2025_02_03_101500.pdf": 1_700_000_100,
        "rapport_2025_02.pdf": 1_700_000_200,
    }
    for name, mtime in files.items():
        (directory / name).write_bytes(PDF if name == "rapport_2025_02.pdf" else b"%PDF-1.4 x")
        os.utime(directory / name, (mtime, mtime))
    (directory / "notes.pdf").write_bytes(b"%PDF not a report name")
    (directory / "secret.txt").write_bytes(SECRET_TEXT)
    (directory / "rapport_2025_03.pdf").symlink_to(outside)
    (directory / "rapport_2025_05.pdf").mkdir()  # a directory with a report's name
    return directory


async def test_list_download_and_traversal(
    sqlite_databases: Databases, kafka_bootstrap: str, reports: Path
) -> None:
    headers = auth(admin_token(subject="admin@univ-exemple.fr"))
    async with serving(sqlite_databases, kafka_bootstrap, reports_dir=reports) as (app, client):
        r = await client.get("/api/batch/reports", headers=headers)
        assert r.status_code == 200
        assert r.json() == [
            {
                "fileName": "rapport_2025_02.pdf",
                "generatedDate": "2023-11-14T22:16:40",
                "fileSizeBytes": len(PDF),
                "downloadUrl": "/api/batch/reports/rapport_2025_02.pdf/download",
            },
            {
                "fileName": "anomaly_report_2025_02_03_101500.pdf",
                "generatedDate": "2023-11-14T22:15:00",
                "fileSizeBytes": 10,
                "downloadUrl": "/api/batch/reports/anomaly_report_2025_02_03_101500.pdf/download",
            },
            {
                "fileName": "rapport_2025_01.pdf",
                "generatedDate": "2023-11-14T22:13:20",
                "fileSizeBytes": 10,
                "downloadUrl": "/api/batch/reports/rapport_2025_01.pdf/download",
            },
        ]

        r = await client.get("/api/batch/reports/rapport_2025_02.pdf/download", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"] == 'attachment; filename="rapport_2025_02.pdf"'
        assert r.content == PDF

        for path, allowed in [*ATTEMPTS, ("rapport_2025_05.pdf/download", {404})]:
            r = await client.get(f"/api/batch/reports/{path}", headers=headers)
            assert r.status_code in allowed, (path, r.status_code, r.text)
            assert b"the-secret" not in r.content, path
            assert r.headers["content-type"].startswith("application/json"), path

        for token, status in ((None, 401), (admin_token(roles=("ROLE_DOCTORANT",)), 403)):
            for url in ("/api/batch/reports", "/api/batch/reports/rapport_2025_02.pdf/download"):
                assert (await client.get(url, headers=auth(token))).status_code == status

        async with app.state.runtime.sources.batchdb.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(audit_log.c.status, audit_log.c.user_id, audit_log.c.details).where(
                        audit_log.c.event_type == "ARCHIVE_ACCESS"
                    )
                )
            ).all()
    success = [r for r in rows if r.status == "SUCCESS"]
    assert len(success) == 1 and success[0].user_id == "admin@univ-exemple.fr"
    assert "rapport_2025_02.pdf" in success[0].details
    assert any(r.status == "REFUSED" and "secret.txt" in r.details for r in rows)
    assert any(r.status == "NOT_FOUND" and r.details == "rapport_2025_03.pdf" for r in rows)


async def test_empty_or_missing_directory_lists_nothing(
    sqlite_databases: Databases, kafka_bootstrap: str, tmp_path: Path
) -> None:
    headers = auth(admin_token())
    async with serving(
        sqlite_databases, kafka_bootstrap, reports_dir=tmp_path / "never-created"
    ) as (_app, client):
        r = await client.get("/api/batch/reports", headers=headers)
        assert r.status_code == 200 and r.json() == []
        r = await client.get("/api/batch/reports/rapport_2025_02.pdf/download", headers=headers)
        assert r.status_code == 404
