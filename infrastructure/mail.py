"""Mailer adapters: SMTP for real delivery, console for the embedded default."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from application.ports import Email

log = logging.getLogger("apranova.mail")


class SmtpMailer:
    def __init__(
        self, host: str, port: int, sender: str, username: str | None = None,
        password: str | None = None, starttls: bool = False, timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    def send(self, message: Email) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)
        log.info("email sent: %s", message.subject)


class ConsoleMailer:
    """Writes emails to the log, so the embedded default works without a mail server."""

    def send(self, message: Email) -> None:
        log.info("email to %s: %s\n%s", message.to, message.subject, message.body)
