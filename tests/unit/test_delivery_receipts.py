"""A failed send's receipt keeps the status code and a coarse class, never the relay's text."""
from __future__ import annotations

import json
import smtplib

import httpx

from pipelines.notification_log import Failure, receipt
from schemas.validate import event_errors
from services.adapters.delivery import NoAddressError, PermanentDeliveryError, failure_of

ADDRESS = "liisa.laine@example.fi"
REPLY = f"5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown in virtual mailbox table"
NOTE = {"notification_id": "n-1", "action_id": "a-1", "respondent_ref": "r_0123456789abcdef01234567"}


def test_the_receipt_of_a_failure_holds_the_code_and_class_only():
    body = receipt(NOTE, "failed", "email", 1, "2026-01-02T03:04:05Z", Failure("recipient_refused", 550).reason(),
                   "fi", Failure("recipient_refused", 550))
    assert event_errors("closure.deliveries", body) == []
    assert (body["status_code"], body["error_class"], body["reason"]) == (550, "recipient_refused",
                                                                          "recipient_refused (550)")
    delivered = receipt(NOTE, "delivered", "email", 1, "2026-01-02T03:04:05Z")
    assert event_errors("closure.deliveries", delivered) == []
    assert delivered["status_code"] is None and delivered["error_class"] is None


def test_failures_keep_no_reply_text():
    smtp = failure_of(smtplib.SMTPResponseException(451, REPLY.encode()))
    assert smtp == Failure("unavailable", 451)
    request = httpx.Request("POST", "http://gateway.example/sms")
    response = httpx.Response(503, text=f"cannot reach {ADDRESS}", request=request)
    http = failure_of(httpx.HTTPStatusError(f"503 for {ADDRESS}", request=request, response=response))
    assert http == Failure("unavailable", 503)
    assert failure_of(ConnectionRefusedError()) == Failure("unavailable")
    assert failure_of(ValueError(ADDRESS)) == Failure("error")
    assert failure_of(PermanentDeliveryError("rejected", 403)) == Failure("rejected", 403)
    assert failure_of(NoAddressError()) == Failure("no_address")
    reasons = [f.reason(deadline_passed=True) for f in (smtp, http)]
    assert reasons == ["delivery deadline passed: unavailable (451)", "delivery deadline passed: unavailable (503)"]
    assert ADDRESS not in json.dumps(reasons)
