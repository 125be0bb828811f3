"""Turn what each channel sends into a feedback.received event plus, when the
respondent left contact details, a contact record.

The request bodies are pydantic models (the HTTP contract of ingest); the event is
checked against schemas/events/feedback.received.v1.json by the caller.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.clock import utc_iso, utc_now
from pipelines.input_checks import SubmittedTime, free_text, identifier
from pipelines.units import units

Channel = Literal["survey", "app", "kiosk"]
LanguageCode = Literal["fi", "sv", "en"]

# Stable namespace so a retried submission with the same idempotency key maps to
# the same feedback_id, which makes every downstream write idempotent.
FEEDBACK_NAMESPACE = uuid.UUID("5b0f3c3e-6d0a-4a57-9c3c-1f1e0b7c2a11")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s()\-]{6,20}$")
# Upper bounds on every identifier, so none is stored, logged or echoed at any length.
# 254: the longest address an SMTP path can carry (RFC 5321).
Email = identifier(254)
Phone = identifier(32)
UnitCode = identifier(64, min_length=1)


def _known_unit(code: str) -> str:
    if code not in units():
        raise ValueError(f"unknown unit {code!r}; see schemas/units.json")
    return code


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _EMAIL.match(value.strip()):
        raise ValueError("not a valid email address")
    return value.strip()


def _phone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _PHONE.match(value.strip()):
        raise ValueError("not a valid phone number")
    return value.strip()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactIn(Strict):
    """Contact details a respondent may leave to hear back."""

    email: Email | None = None
    phone: Phone | None = None
    push_token: identifier(512) | None = None
    preferred_channel: Literal["email", "sms", "push"] | None = None
    language: LanguageCode | None = None

    _v_email = field_validator("email")(classmethod(lambda cls, v: _email(v)))
    _v_phone = field_validator("phone")(classmethod(lambda cls, v: _phone(v)))

    @model_validator(mode="after")
    def _has_detail(self) -> "ContactIn":
        if not (self.email or self.phone or self.push_token):
            raise ValueError("contact needs at least one of email, phone or push_token")
        wanted = self.preferred_channel
        have = {"email": self.email, "sms": self.phone, "push": self.push_token}
        if wanted and not have[wanted]:
            raise ValueError(f"preferred_channel {wanted!r} has no matching contact detail")
        return self


class AppFeedbackIn(Strict):
    """POST /v1/feedback/app"""

    unit: UnitCode
    text: free_text(10000, min_length=1)
    submitted_at: SubmittedTime | None = None
    language_hint: LanguageCode | None = None
    contact: ContactIn | None = None
    follow_up_consent: bool = False
    idempotency_key: identifier(200) | None = None
    app_version: identifier(50) | None = None

    _v_unit = field_validator("unit")(classmethod(lambda cls, v: _known_unit(v)))

    @model_validator(mode="after")
    def _consent_needs_contact(self) -> "AppFeedbackIn":
        if self.follow_up_consent and self.contact is None:
            raise ValueError("follow_up_consent is true but no contact was given")
        return self


class SurveyRespondentIn(Strict):
    email: Email | None = None
    phone: Phone | None = None
    language: LanguageCode | None = None
    follow_up_consent: bool = False

    _v_email = field_validator("email")(classmethod(lambda cls, v: _email(v)))
    _v_phone = field_validator("phone")(classmethod(lambda cls, v: _phone(v)))

    @model_validator(mode="after")
    def _consent_needs_contact(self) -> "SurveyRespondentIn":
        if self.follow_up_consent and not (self.email or self.phone):
            raise ValueError("follow_up_consent is true but neither email nor phone was given")
        return self


class SurveyResponseIn(Strict):
    """POST /v1/feedback/survey (a survey tool's webhook), also one CSV export row."""

    survey_id: identifier(100, min_length=1)
    response_id: identifier(200, min_length=1)
    question_id: identifier(100) | None = None
    unit: UnitCode
    answer_text: free_text(10000) = ""
    score: Annotated[int | None, Field(ge=1, le=5)] = None
    submitted_at: SubmittedTime | None = None
    respondent: SurveyRespondentIn | None = None

    _v_unit = field_validator("unit")(classmethod(lambda cls, v: _known_unit(v)))

    @model_validator(mode="after")
    def _something_said(self) -> "SurveyResponseIn":
        if not self.answer_text and self.score is None:
            raise ValueError("a survey response needs answer_text or score")
        return self


class KioskEventIn(Strict):
    """POST /v1/feedback/kiosk: a smiley press (1 happiest .. 4 unhappiest) and an optional comment.

    The smiley is strict: a kiosk sends one of the integers 1-4; "3", 3.0 or true is a
    broken client whose presses must not be counted as something else.
    """

    kiosk_id: identifier(100, min_length=1)
    unit: UnitCode
    smiley: Annotated[int, Field(ge=1, le=4, strict=True)]
    comment: free_text(2000) | None = None
    pressed_at: SubmittedTime | None = None
    language_hint: LanguageCode | None = None

    _v_unit = field_validator("unit")(classmethod(lambda cls, v: _known_unit(v)))


@dataclass(frozen=True)
class ContactRecord:
    """Contact details split off from a submission; never part of the feedback event."""

    email: str | None
    phone: str | None
    push_token: str | None
    preferred_channel: Literal["email", "sms", "push"]
    language: LanguageCode
    follow_up_consent: bool
    channel: Channel


@dataclass(frozen=True)
class Intake:
    """A submission normalised: the event (without respondent_ref yet) and the contact."""

    event: dict[str, Any]
    contact: ContactRecord | None


def feedback_id_for(channel: str, idempotency_key: str | None) -> str:
    """Deterministic for a keyed submission (retries collapse), random otherwise."""
    if idempotency_key:
        return uuid5_text(FEEDBACK_NAMESPACE, f"{channel}:{idempotency_key}")
    return str(uuid.uuid4())


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` without building a UUID object: the same SHA-1 and
    version bits, written straight to text (uuid.UUID's checks were 3% of an ingest request)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else utc_iso(dt)


def _base(channel: Channel, unit: str, text: str, key: str | None, submitted: datetime | None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "feedback_id": feedback_id_for(channel, key),
        "channel": channel,
        "unit": unit,
        "service_area": units()[unit].service_area,
        "received_at": utc_now(),
        "submitted_at": _iso(submitted),
        "text": text,
        "rating": None,
        "rating_scale": None,
        "language_hint": None,
        "respondent_ref": None,
        "follow_up_consent": False,
        "source": {},
        "idempotency_key": key,
    }


def from_app(body: AppFeedbackIn, header_key: str | None = None) -> Intake:
    key = body.idempotency_key or header_key
    event = _base("app", body.unit, body.text, key, body.submitted_at)
    event["language_hint"] = body.language_hint
    if body.app_version:
        event["source"]["app_version"] = body.app_version
    contact = None
    if body.contact:
        c = body.contact
        channel = c.preferred_channel or ("email" if c.email else "sms" if c.phone else "push")
        contact = ContactRecord(c.email, c.phone, c.push_token, channel,
                                c.language or body.language_hint or "fi", body.follow_up_consent, "app")
        event["follow_up_consent"] = body.follow_up_consent
    return Intake(event, contact)


def from_survey(body: SurveyResponseIn, import_file: str | None = None) -> Intake:
    key = f"{body.survey_id}:{body.response_id}"
    event = _base("survey", body.unit, body.answer_text, key, body.submitted_at)
    event["rating"], event["rating_scale"] = body.score, 5 if body.score is not None else None
    event["source"] = {"survey_id": body.survey_id}
    if body.question_id:
        event["source"]["question_id"] = body.question_id
    if import_file:
        event["source"]["import_file"] = import_file
    contact = None
    r = body.respondent
    if r and (r.email or r.phone):
        event["language_hint"] = r.language
        contact = ContactRecord(r.email, r.phone, None, "email" if r.email else "sms",
                                r.language or "fi", r.follow_up_consent, "survey")
        event["follow_up_consent"] = r.follow_up_consent
    return Intake(event, contact)


def from_kiosk(body: KioskEventIn, header_key: str | None = None) -> Intake:
    key = header_key or (f"{body.kiosk_id}:{_iso(body.pressed_at)}" if body.pressed_at else None)
    event = _base("kiosk", body.unit, body.comment or "", key, body.pressed_at)
    event["rating"], event["rating_scale"] = body.smiley, 4
    event["language_hint"] = body.language_hint
    event["source"] = {"kiosk_id": body.kiosk_id}
    return Intake(event, None)


CSV_COLUMNS = ("response_id", "submitted_at", "unit", "question_id", "score", "answer", "email", "phone",
               "language", "follow_up")


def survey_from_csv_row(row: dict[str, str], survey_id: str) -> SurveyResponseIn:
    """One row of a survey tool's CSV export as a survey response (raises ValidationError)."""
    missing = [c for c in ("response_id", "unit") if not (row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"CSV row lacks {', '.join(missing)}")
    follow = (row.get("follow_up") or "").strip().lower() in {"yes", "y", "true", "1", "kyllä", "ja"}
    email, phone = (row.get("email") or "").strip() or None, (row.get("phone") or "").strip() or None
    respondent = None
    if email or phone or follow:
        respondent = {"email": email, "phone": phone, "language": (row.get("language") or "").strip() or None,
                      "follow_up_consent": follow}
    score = (row.get("score") or "").strip()
    return SurveyResponseIn.model_validate({
        "survey_id": survey_id,
        "response_id": row["response_id"].strip(),
        "question_id": (row.get("question_id") or "").strip() or None,
        "unit": row["unit"].strip(),
        "answer_text": row.get("answer") or "",
        "score": int(score) if score.isdigit() else (score or None),
        "submitted_at": (row.get("submitted_at") or "").strip() or None,
        "respondent": respondent,
    })
