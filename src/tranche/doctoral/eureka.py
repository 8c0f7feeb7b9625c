"""Optional Eureka registration (py-eureka-client), as the original did, when a URL is set.

The portal's gateway finds services through Eureka; registering keeps
``lb://BATCH-SERVICE`` routes working when tranche replaces the original. A
registration failure is logged and does not stop the service: the API works
without discovery, and the client keeps retrying in the background.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from py_eureka_client import eureka_client

from tranche.core.logging import get_logger
from tranche.doctoral.settings import DoctoralSettings

__all__ = ["register", "unregister"]

log = get_logger(__name__)


def _split_credentials(url: str) -> tuple[str, str, str]:
    """``http://user:pw@host:8761/eureka/`` → (URL without credentials, user, password)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, parts.username or "", parts.password or ""


async def register(settings: DoctoralSettings) -> Any | None:
    """Register this instance; returns the client (None when no Eureka URL is configured)."""
    if not settings.eureka_url:
        return None
    server, user, password = _split_credentials(settings.eureka_url)
    host = settings.eureka_instance_host or settings.host
    base = f"http://{host}:{settings.port}"
    try:
        client = await eureka_client.init_async(
            eureka_server=server,
            eureka_basic_auth_user=user,
            eureka_basic_auth_password=password,
            app_name=settings.eureka_app_name,
            instance_host=host,
            instance_ip=host,
            instance_port=settings.port,
            health_check_url=f"{base}/actuator/health",
            status_page_url=f"{base}/actuator/info",
            home_page_url=f"{base}/docs",
            should_discover=False,
        )
    except Exception as exc:
        log.error("eureka_registration_failed", server=server, error=f"{type(exc).__name__}: {exc}")
        return None
    log.info("eureka_registered", server=server, app=settings.eureka_app_name, port=settings.port)
    return client


async def unregister(client: Any | None) -> None:
    if client is None:
        return
    try:
        await eureka_client.stop_async()
    except Exception as exc:
        log.warning("eureka_unregister_failed", error=f"{type(exc).__name__}: {exc}")
