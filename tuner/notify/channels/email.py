"""The email channel: SMTP with STARTTLS or implicit TLS, authentication, text + HTML."""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from tuner.notify.channels.base import ChannelOptions, DeliveryError
from tuner.notify.messages import Message
from tuner.notify.secrets import Secret
from tuner.notify.settings import EmailChannelSettings

_REJECTED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)

_ASCII_HEADERS = email.policy.default.clone(max_line_length=998)
"""RFC 5322's hard limit: an ASCII subject stays on the header's line.

The default policy folds at 78 characters and, for some subjects, breaks right after
``Subject:``, so that mail clients show the subject with a leading space.  Subjects that
need encoded words (non-ASCII) keep the default, which folds those correctly.
"""


class EmailChannel(ChannelOptions):
    """Sends each message as one multipart (text + HTML) email to the configured addresses."""

    type = "email"

    def __init__(
        self,
        name: str,
        settings: EmailChannelSettings,
        username: str | None = None,
        password: Secret | None = None,
    ):
        super().__init__(name, settings)
        self._settings = settings
        self._username = username
        self._password = password
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            cafile = str(settings.ca_file) if settings.ca_file else None
            self._tls = ssl.create_default_context(cafile=cafile)

    def compose(self, message: Message) -> EmailMessage:
        """The email for a message; its Message-ID is derived from the message id."""
        s = self._settings
        subject = f"{s.subject_prefix} {message.title}".strip()
        mail = EmailMessage(policy=_ASCII_HEADERS if subject.isascii() else email.policy.default)
        mail["Subject"] = subject
        mail["From"] = s.from_
        mail["To"] = ", ".join(s.to)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{message.id}@tuner>"
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, message: Message) -> None:
        """Connect, secure, log in and send; failures say whether the mail may have arrived."""
        mail = self.compose(message)
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(self._describe(error), delivered=False) from None
        try:
            refused = smtp.send_message(mail)
        except _REJECTED as error:
            raise DeliveryError(self._describe(error), delivered=False) from None
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError(self._describe(error), delivered=None) from None
        finally:
            _quit(smtp)
        if refused:
            raise DeliveryError(
                f"some recipients refused: {', '.join(sorted(refused))}", delivered=True
            )

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self._tls)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=self._tls)
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password.reveal())
        except BaseException:
            _quit(smtp)
            raise
        return smtp

    def _describe(self, error: BaseException) -> str:
        return self.redact(f"{type(error).__name__}: {error}")

    def redact(self, text: str) -> str:
        """``text`` without the password."""
        return self._password.redact(text) if self._password else text


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
