from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from tests.fixtures.smtp import Inbox


async def test_mail_sent_with_aiosmtplib_arrives(smtp_server: Inbox) -> None:
    msg = EmailMessage()
    msg["From"] = "batch@example.org"
    msg["To"] = "admin@example.org"
    msg["Subject"] = "Rapport mensuel"
    msg.set_content("bonjour")
    await aiosmtplib.send(msg, hostname=smtp_server.host, port=smtp_server.port)
    assert smtp_server.messages[0]["Subject"] == "Rapport mensuel"
    assert smtp_server.envelopes == [("batch@example.org", ["admin@example.org"])]
