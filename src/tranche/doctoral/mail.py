"""Mail to the portal's administrators (aiosmtplib), and who they are.

Admins are userdb's enabled users holding ROLE_ADMIN, plus
``DOCTORAL_ADMIN_EMAILS``; when userdb itself is what failed, the configured
list is all there is, which is why it exists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import sqlalchemy as sa

from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.notifications import EMAIL_PATTERN
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables.userdb import roles, user_roles, users

__all__ = ["Attachment", "MailError", "Mailer", "admin_emails"]

#: The health check talks to the SMTP server at most this often (probes come every few
#: seconds; a mail server need not greet each of them).
HEALTH_PROBE_INTERVAL_S = 30.0
_UNREACHABLE = (
    OSError,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
)

log = get_logger(__name__)


async def admin_emails(userdb: Database, configured: Sequence[str]) -> list[str]:
    """Enabled ROLE_ADMIN users' emails and the configured ones, deduplicated, in order."""
    found: list[str] = []
    try:
        query = (
            sa.select(users.c.email)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .join(roles, roles.c.id == user_roles.c.role_id)
            .where(roles.c.name == "ROLE_ADMIN", users.c.enabled == sa.true())
            .order_by(users.c.id)
        )
        async with userdb.sessions() as s:
            found = [str(e) for e in (await s.execute(query)).scalars()]
    except Exception as exc:
        log.warning("admin_lookup_failed", error=f"{type(exc).__name__}: {exc}"[:300])
    out: list[str] = []
    for email in [*found, *configured]:
        if EMAIL_PATTERN.match(email) and email.lower() not in {e.lower() for e in out}:
            out.append(email)
    return out


class MailError(Exception):
    """The SMTP server refused or could not be reached; the message says why (no secrets)."""


Attachment = tuple[str, bytes, str]
"""A file to attach: ``(file name, content, MIME type)``."""


class Mailer:
    """Sends mail through the configured SMTP server (or nowhere, if unset)."""

    def __init__(self, settings: DoctoralSettings) -> None:
        self.settings = settings
        self._probed_at: float | None = None
        self._probe_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.smtp_host is not None

    async def health(self) -> dict[str, Any]:
        """Health check: the server answers its greeting (connect, EHLO, QUIT), or raises.

        Registered as a *degrading* component: with SMTP down the jobs still run and
        record every undelivered mail (``report_deliveries``, the failure event through
        Kafka), so the service is not DOWN. The outcome is kept for
        :data:`HEALTH_PROBE_INTERVAL_S`; a delivery that could not reach the server
        counts as a failed probe.
        """
        s = self.settings
        now = time.monotonic()
        if self._probed_at is None or now - self._probed_at >= HEALTH_PROBE_INTERVAL_S:
            self._probed_at, self._probe_error = now, None
            client = aiosmtplib.SMTP(
                hostname=s.smtp_host, port=s.smtp_port, use_tls=s.smtp_tls, timeout=3.0
            )
            try:
                await client.connect()
                await client.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._probe_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._probe_error is not None:
            raise MailError(self._probe_error)
        return {"host": s.smtp_host, "port": s.smtp_port}

    async def send(self, to: Sequence[str], subject: str, body: str) -> bool:
        """True when the server accepted the message; failures are logged, never raised."""
        if self.settings.smtp_host is None or not to:
            reason = "no SMTP host" if self.settings.smtp_host is None else "no recipient"
            log.info("mail_skipped", reason=reason)
            return False
        try:
            await self.deliver(to, subject, body)
        except MailError:
            return False
        return True

    async def deliver(
        self,
        to: Sequence[str],
        subject: str,
        text: str,
        html: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        """Send text (and HTML, and attachments); :class:`MailError` when it was not sent,
        so the caller can record the outcome per recipient."""
        s = self.settings
        if s.smtp_host is None:
            raise MailError("no SMTP host configured (DOCTORAL_SMTP_HOST)")
        if not to:
            raise MailError("no recipient")
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(text or "")
        if html:
            message.add_alternative(html, subtype="html")
        for name, content, mime in attachments:
            main, _, sub = mime.partition("/")
            message.add_attachment(content, maintype=main, subtype=sub, filename=name)
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.smtp_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.error("mail_failed", to=list(to), error=error[:300])
            if isinstance(exc, _UNREACHABLE):  # a refused address says nothing of the server
                self._probed_at, self._probe_error = time.monotonic(), error[:300]
            raise MailError(error) from exc
        self._probed_at, self._probe_error = time.monotonic(), None
        log.info("mail_sent", to=list(to), subject=subject)
