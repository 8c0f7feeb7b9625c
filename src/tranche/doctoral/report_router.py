"""``/api/batch/reports``: the monthly (and anomaly) reports, listed and downloaded (reference §8).

ROLE_ADMIN only, like every ``/api/batch/**`` route. The original served any
``*.pdf`` after a substring check; here only the report name patterns are
served (:mod:`tranche.doctoral.reports.storage`): a bad name answers 400, a
missing file or a symlink 404, and no byte from outside the reports directory
can ever be returned. Every download and every refused name is an
``ARCHIVE_ACCESS`` audit row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from tranche.core.errors import ApiError
from tranche.doctoral.audit import AuditEvent, AuditEventType
from tranche.doctoral.auth import AdminDep, Principal
from tranche.doctoral.reports.storage import InvalidReportName, ReportNotFound, ReportStore
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import ReportInfoDTO

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an invalid or expired one"},
    403: {"description": "The token does not hold ROLE_ADMIN"},
}

router = APIRouter(prefix="/api/batch/reports", tags=["Batch Reports"], responses=_ERRORS)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _store(runtime: Runtime) -> ReportStore:
    return ReportStore(runtime.settings.reports_directory)


def _download_path(file_name: str) -> str:
    return f"/api/batch/reports/{file_name}/download"


@router.get(
    "",
    summary="The reports on disk, newest first",
    response_model=list[ReportInfoDTO],
    response_model_by_alias=True,
)
async def list_reports(request: Request, _admin: AdminDep) -> list[ReportInfoDTO]:
    files = _store(_runtime(request)).list()
    return [
        ReportInfoDTO(
            file_name=f.name,
            generated_date=f.modified,
            file_size_bytes=f.size,
            download_url=_download_path(f.name),
        )
        for f in files
    ]


async def _audit(runtime: Runtime, who: Principal, path: str, status: str, details: str) -> None:
    await runtime.audit.record(
        AuditEvent(
            AuditEventType.ARCHIVE_ACCESS,
            "REPORT_DOWNLOAD",
            status,
            user_id=who.email,
            user_role=who.role_list,
            resource_path=path,
            details=details[:500],
            ip_address=who.ip_address,
            user_agent=who.user_agent,
        )
    )


@router.get(
    "/{fileName}/download",
    summary="Download one report (application/pdf)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The PDF"},
        400: {"description": "Not a report name (rapport_YYYY_MM.pdf, anomaly_report_….pdf)"},
        404: {"description": "No such report"},
    },
)
async def download(
    request: Request,
    admin: AdminDep,
    file_name: Annotated[str, Path(alias="fileName", max_length=255)],
) -> StreamingResponse:
    runtime = _runtime(request)
    path = request.url.path
    try:
        info, chunks = _store(runtime).open(file_name)
    except InvalidReportName as exc:
        await _audit(runtime, admin, path, "REFUSED", f"invalid name {file_name!r}")
        raise ApiError(400, str(exc), extra={"field": "fileName"}) from None
    except ReportNotFound:
        await _audit(runtime, admin, path, "NOT_FOUND", file_name)
        raise ApiError(404, f"No report named {file_name}") from None
    await _audit(runtime, admin, path, "SUCCESS", f"{file_name} ({info.size} bytes)")
    return StreamingResponse(
        chunks,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{info.name}"',
            "Content-Length": str(info.size),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
