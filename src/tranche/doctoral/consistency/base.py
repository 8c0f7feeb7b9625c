"""What the checks are given: the databases, the settings they read, the mailer, the recipients."""

from __future__ import annotations

from dataclasses import dataclass

from tranche.doctoral.mail import Mailer, admin_emails
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import Sources

__all__ = ["Deps"]


@dataclass(frozen=True)
class Deps:
    sources: Sources
    settings: DoctoralSettings
    mailer: Mailer

    @property
    def chunk_size(self) -> int:
        return self.settings.consistency_chunk_size

    @property
    def topic(self) -> str:
        return self.settings.notifications_topic

    async def admins(self) -> list[str]:
        """userdb's enabled ROLE_ADMIN users and the configured admins."""
        return await admin_emails(self.sources.userdb, self.settings.admin_emails)

    async def technical_admins(self) -> list[str]:
        """The technical admin when configured, else the admins."""
        if self.settings.technical_admin_email:
            return [self.settings.technical_admin_email]
        return await self.admins()
