"""Delivery channels: email over SMTP, SMS through an HTTP gateway, push through a webhook.

Each raises PermanentDeliveryError when retrying cannot help (a rejected address)
and anything else for transient failures, which the notifier retries with backoff.
:func:`failure_of` turns either into what a receipt keeps: a coarse class and the
status code, never the relay's reply text (an SMTP 550 reply quotes the address).
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

import httpx

from pipelines.messages import RenderedMessage
from pipelines.notification_log import Failure
from pipelines.vault import Contact
from services.settings import Settings


class PermanentDeliveryError(Exception):
    """The message can never be delivered as addressed: a coarse class and the status code;
    the message is built from those only."""

    def __init__(self, error_class: str, status_code: int | None = None) -> None:
        self.failure = Failure(error_class, status_code)
        super().__init__(self.failure.reason())


class NoAddressError(PermanentDeliveryError):
    """The contact has no address for the chosen channel."""

    def __init__(self) -> None:
        super().__init__("no_address")


def failure_of(exc: BaseException) -> Failure:
    """What a receipt may keep of a failed send: no text from the relay or the gateway."""
    if isinstance(exc, PermanentDeliveryError):
        return exc.failure
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure("unavailable", exc.smtp_code)
    if isinstance(exc, httpx.HTTPStatusError):
        return Failure("unavailable", exc.response.status_code)
    if isinstance(exc, (OSError, httpx.TransportError)):  # refused, reset, timed out
        return Failure("unavailable")
    return Failure("error")


def message_id(settings: Settings, notification_id: str) -> str:
    domain = settings.mail_from.rpartition("@")[2] or "feedback.invalid"
    return f"<{notification_id}@{domain}>"


def send_email(settings: Settings, contact: Contact, msg: RenderedMessage, notification_id: str) -> None:
    if not contact.email:
        raise NoAddressError()
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = contact.email
    mail["Subject"] = msg.subject
    # Derived from the notification id, so a resend after a crash carries the same Message-ID
    # (mail stores such as Gmail show one message per Message-ID).
    mail["Message-ID"] = message_id(settings, notification_id)
    mail["X-Notification-Id"] = notification_id
    if msg.opt_out_url:
        mail["List-Unsubscribe"] = f"<{msg.opt_out_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(msg.body)
    mail["Content-Language"] = msg.language  # after set_content, which clears Content-* headers
    smtp_send(settings, mail)


def send_staff_email(settings: Settings, to: str, subject: str, body: str, mail_id: str,
                     headers: dict[str, str] | None = None) -> None:
    """An email to a staff role mailbox (urgent feedback). ``mail_id`` makes the Message-ID,
    so a resend after a crash is the same message to the mail store."""
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id(settings, mail_id)
    mail["Date"] = formatdate(usegmt=True)
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    smtp_send(settings, mail)


def smtp_send(settings: Settings, mail: EmailMessage) -> None:
    """Hand ``mail`` to the SMTP server; PermanentDeliveryError when retrying cannot help."""
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]  # the reply texts stay here
        if codes and all(400 <= c < 500 for c in codes):
            raise smtplib.SMTPResponseException(codes[0], b"recipient deferred") from None  # transient
        raise PermanentDeliveryError("recipient_refused", codes[0] if codes else None) from None
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentDeliveryError("rejected", exc.smtp_code) from None
        raise


def _post(url: str | None, payload: dict, notification_id: str) -> None:
    if not url:
        raise PermanentDeliveryError("not_configured")
    resp = httpx.post(url, json=payload, headers={"Idempotency-Key": notification_id}, timeout=15)
    if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
        raise PermanentDeliveryError("rejected", resp.status_code)
    resp.raise_for_status()


def send_sms(settings: Settings, contact: Contact, msg: RenderedMessage, notification_id: str) -> None:
    if not contact.phone:
        raise NoAddressError()
    _post(settings.sms_gateway_url, {"to": contact.phone, "text": f"{msg.subject}\n\n{msg.body}",
                                     "language": msg.language, "id": notification_id},
          notification_id)


def send_push(settings: Settings, contact: Contact, msg: RenderedMessage, notification_id: str) -> None:
    if not contact.push_token:
        raise NoAddressError()
    _post(settings.push_webhook_url, {"token": contact.push_token, "title": msg.subject, "body": msg.body,
                                      "language": msg.language, "id": notification_id},
          notification_id)


SENDERS = {"email": send_email, "sms": send_sms, "push": send_push}
