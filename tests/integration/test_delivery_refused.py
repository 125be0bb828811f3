"""A recipient the real SMTP sink refuses (550 with a reply that echoes the address): the
error, and so the receipt built from it, hold the code and the class, not the reply or address."""
from __future__ import annotations

import socket

import pytest

from devstack.smtp import REFUSED_DOMAIN, SmtpSink
from pipelines.messages import RenderedMessage
from pipelines.notification_log import Failure, receipt
from pipelines.vault import Contact
from schemas.validate import event_errors
from services.adapters.delivery import PermanentDeliveryError, failure_of, send_email
from services.settings import Settings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_recipient_leaves_only_the_code_in_the_receipt(tmp_path):
    port = _free_port()
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port)
    msg = RenderedMessage(language="fi", subject="Palautteesi", body="Kiitos", opt_out_url=None)
    address = f"liisa.laine@{REFUSED_DOMAIN}"
    with SmtpSink(tmp_path / "mail", port=port) as sink:
        with pytest.raises(PermanentDeliveryError) as refused:
            send_email(settings, Contact(email=address), msg, "n-1")
        send_email(settings, Contact(email="liisa.laine@example.fi"), msg, "n-2")  # others still go
        assert len(sink.messages()) == 1
    failure = failure_of(refused.value)
    assert failure == Failure("recipient_refused", 550)
    body = receipt({"notification_id": "n-1", "action_id": "a-1", "respondent_ref": "r_1"}, "failed", "email", 1,
                   "2026-01-02T03:04:05Z", failure.reason(), "fi", failure)
    assert event_errors("closure.deliveries", body) == []
    text = repr(body) + str(refused.value) + repr(refused.value.__cause__)
    assert "liisa.laine" not in text and "rejected" not in text.replace("error_class", "")
    assert body["status_code"] == 550
