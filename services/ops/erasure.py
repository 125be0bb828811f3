"""Erasure of a respondent (GDPR art. 17): contact tombstoned, feedback deleted, confirmed.

Used by ``POST /v1/erasure`` (run in a thread) and ``feedback erase``. Steps per ref,
each idempotent so a failed erasure is simply run again:

1. the ref goes on the erasure list (``<alias>-erasures``), so the indexer drops any
   feedback of this respondent still in flight from now on;
2. tombstones (null values) for the ref on respondent.contacts and on the notifier's
   closure.notification_log: compaction removes the encrypted contact and the log of
   what was sent to them; the notifier drops both from memory when it next reads them;
3. tombstones under each of the respondent's feedback ids on feedback.received,
   feedback.enriched and feedback.urgent (compacted): the raw and redacted text go
   at the next compaction, not at the end of retention; written before step 4 so a
   retry can still find the ids;
4. the respondent's documents deleted from Elasticsearch (search by respondent_ref,
   bulk delete: delete_by_query is not available everywhere);
5. a confirmation on gdpr.erasure.

What this cannot reach is listed in docs/privacy.md (dead letters, backups, the
window before compaction runs).
"""
from __future__ import annotations

import getpass
from typing import Any

from elasticsearch.helpers import bulk

from pipelines.clock import utc_now
from pipelines.erasure import IdentifiedBy, confirmation, contact_matches, direct_ref
from pipelines.vault import ContactVault
from schemas.validate import validate_event
from services import metrics
from services.adapters.contacts_store import live_contacts, producer
from services.adapters.es import es_client
from services.adapters.kafka_io import dumps
from services.logs import get_logger
from services.settings import Settings
from services.adapters.stores import ensure_index, erasures_index
from services.topics import (FEEDBACK_ENRICHED, FEEDBACK_RECEIVED, FEEDBACK_URGENT, GDPR_ERASURE,
                             NOTIFICATION_LOG, RESPONDENT_CONTACTS)

log = get_logger("erasure")
FEEDBACK_TOPICS = (FEEDBACK_RECEIVED, FEEDBACK_ENRICHED, FEEDBACK_URGENT)


def cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli:unknown"


def find_refs(settings: Settings, *, ref: str | None = None, email: str | None = None,
              phone: str | None = None) -> tuple[list[str], IdentifiedBy]:
    """Every ref a request names. For an email or phone: every live contact record that holds
    it (a respondent who gave both has the ref of their email, so a phone alone would miss
    them); if none does, the ref the detail hashes to (nothing held, or a contact already
    tombstoned by an erasure that failed half-way: its documents are still found by ref)."""
    key = settings.pseudonym_key.get_secret_value().encode()
    direct, by = direct_ref(key, ref=ref, email=email, phone=phone)
    if by == "ref":
        return [direct], by
    vault = ContactVault([k.get_secret_value() for k in settings.contact_keys])
    refs = set()
    for other, record in live_contacts(settings):
        try:
            contact = vault.decrypt(record["contact_ciphertext"])
        except ValueError:
            continue  # under a removed key: unreadable for everyone, nothing to match
        if contact_matches(contact, email=email, phone=phone):
            refs.add(other)
    return sorted(refs or {direct}), by


def _documents(es: Any, alias: str, ref: str) -> list[tuple[str, str]]:
    """(index, id) of every document of ``ref`` behind the alias, paged."""
    out: list[tuple[str, str]] = []
    after = None
    while True:
        kwargs: dict[str, Any] = {"index": alias, "size": 1000, "_source": False,
                                  "query": {"term": {"respondent_ref": ref}}, "sort": [{"feedback_id": "asc"}]}
        if after:
            kwargs["search_after"] = after
        hits = es.search(**kwargs)["hits"]["hits"]
        out.extend((h["_index"], h["_id"]) for h in hits)
        if len(hits) < 1000:
            return out
        after = hits[-1]["sort"]


def erase_ref(settings: Settings, ref: str, identified_by: IdentifiedBy, requested_by: str,
              es: Any = None, prod: Any = None) -> dict[str, Any]:
    """Erase one respondent; returns the gdpr.erasure confirmation (already published)."""
    requested_at = utc_now()
    own_es, own_prod = es is None, prod is None
    es = es or es_client(settings)
    prod = prod or producer(settings)
    alias = settings.index_alias
    try:
        ensure_index(es, alias, "erasures")
        es.index(index=erasures_index(alias), id=ref, document={
            "respondent_ref": ref, "erased_at": requested_at, "requested_by": requested_by}, refresh="wait_for")
        for spec in (RESPONDENT_CONTACTS, NOTIFICATION_LOG):
            prod.send(settings.topic(spec.name), key=ref.encode(), value=None)
        es.indices.refresh(index=alias)
        docs = _documents(es, alias, ref)
        for _, fid in docs:
            for spec in FEEDBACK_TOPICS:
                prod.send(settings.topic(spec.name), key=fid.encode(), value=None)
        prod.flush(timeout=60)  # tombstones durable before the ids become unfindable
        if docs:
            _, errors = bulk(es, [{"_op_type": "delete", "_index": index, "_id": fid} for index, fid in docs],
                             raise_on_error=False, refresh="wait_for")
            # 404: already gone (the indexer deletes on the tombstones written above).
            real = [e for e in errors if next(iter(e.values())).get("status") != 404]
            if real:
                raise RuntimeError(f"{len(real)} documents could not be deleted; run it again")
        deleted = len(docs)
        event = confirmation(ref, identified_by, requested_by, requested_at, utc_now(), contact_tombstoned=True,
                             documents_deleted=deleted, kafka_tombstones=len(docs) * len(FEEDBACK_TOPICS))
        validate_event("gdpr.erasure", event)
        prod.send(settings.topic(GDPR_ERASURE.name), key=ref.encode(), value=dumps(event))
        prod.flush(timeout=60)
        metrics.ERASURES.labels(identified_by).inc()
        log.info("respondent_erased", erasure_id=event["erasure_id"], documents_deleted=deleted,
                 requested_by=requested_by)
        return event
    finally:
        if own_prod:
            prod.close()
        if own_es:
            es.close()


def erase(settings: Settings, requested_by: str, *, ref: str | None = None, email: str | None = None,
          phone: str | None = None) -> list[dict[str, Any]]:
    """Erase every respondent the request names; one confirmation per ref."""
    refs, by = find_refs(settings, ref=ref, email=email, phone=phone)
    es, prod = es_client(settings), producer(settings)
    try:
        return [erase_ref(settings, r, by, requested_by, es=es, prod=prod) for r in refs]
    finally:
        prod.close()
        es.close()
