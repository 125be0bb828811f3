"""The local stack starts real servers that work, and stops them completely.

Ports are free ones picked by the OS, so neither the suite's own session stack nor a stack
from `feedback up` gets in the way.
"""
from __future__ import annotations

import smtplib
import socket
import time
import uuid
from email.message import EmailMessage

import httpx
import pytest

from devstack import LocalStack, read_mailbox
from devstack._proc import group_alive

pytestmark = pytest.mark.integration


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now; all held open together so they are distinct."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_stack_serves_kafka_elasticsearch_and_smtp(tmp_path) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic

    kafka_port, controller_port, es_port, transport_port, smtp_port = free_ports(5)
    stack = LocalStack(kafka_port=kafka_port, kafka_controller_port=controller_port, es_port=es_port,
                       es_transport_port=transport_port, smtp_port=smtp_port, stack_dir=tmp_path / "stack",
                       reuse=False)
    stack.start()
    try:
        pids = stack.pids()
        assert set(pids) == {"kafka", "elasticsearch", "smtp"}
        assert stack.env() == {
            "FEEDBACK_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
            "FEEDBACK_ES_URL": f"http://127.0.0.1:{es_port}",
            "FEEDBACK_SMTP_HOST": "127.0.0.1",
            "FEEDBACK_SMTP_PORT": str(smtp_port),
        }
        assert (stack.stack_dir / "stack.json").exists()

        # Kafka: explicit topic, one message there and back.
        topic = f"localstack-test-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            assert topic in admin.list_topics()
        finally:
            admin.close()
        producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        producer.send(topic, key=b"k1", value="kiitos hyvästä hoidosta".encode()).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, group_id="localstack-test",
                                 auto_offset_reset="earliest", consumer_timeout_ms=30_000)
        try:
            record = next(iter(consumer))
        finally:
            consumer.close()
        assert (record.key, record.value.decode()) == (b"k1", "kiitos hyvästä hoidosta")

        # Elasticsearch: index one document, find it.
        with httpx.Client(base_url=stack.es_url, timeout=30) as es:
            r = es.put("/localstack-test/_doc/f1", params={"refresh": "true"},
                       json={"text": "Long wait at the emergency department", "unit": "ED"})
            assert r.status_code in (200, 201), r.text
            r = es.post("/localstack-test/_search", json={"query": {"match": {"text": "emergency"}}})
            assert r.status_code == 200, r.text
            hits = r.json()["hits"]["hits"]
            assert [h["_id"] for h in hits] == ["f1"]

            # The fs snapshot repository is registered at the node's own path.repo.
            from services.settings import get_settings

            repository = get_settings().snapshot_repository
            r = es.get(f"/_snapshot/{repository}")
            assert r.status_code == 200, r.text
            assert r.json()[repository]["settings"]["location"] == str(stack.elasticsearch.snapshot_dir)

        # SMTP: one message in, same message out of the mailbox.
        msg = EmailMessage()
        msg["From"] = "palaute@hyvinvointialue.example"
        msg["To"] = "asukas@example.org"
        msg["Subject"] = "Sanoitte, teimme"
        msg.set_content("Päivystyksen odotusaikaa on lyhennetty.")
        with smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)
        mails = read_mailbox(stack.maildir)
        assert len(mails) == 1
        assert mails[0]["Subject"] == "Sanoitte, teimme"
        assert mails[0]["X-Envelope-To"] == "asukas@example.org"
        assert "odotusaikaa" in mails[0].get_content()
    finally:
        stack.stop()

    # Every process group we started is gone, the ports are free, the state file removed.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(group_alive(pid) for pid in pids.values()):
        time.sleep(0.1)
    assert not [name for name, pid in pids.items() if group_alive(pid)]
    assert not (stack.stack_dir / "stack.json").exists()
    with pytest.raises(OSError):
        smtplib.SMTP(stack.smtp_host, stack.smtp_port, timeout=2)


def test_in_process_smtp_sink_stores_messages_in_order(tmp_path) -> None:
    from devstack import SmtpSink

    (port,) = free_ports(1)
    with SmtpSink(tmp_path / "mail", port=port) as sink, smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for n in range(3):
            smtp.sendmail("a@example.org", ["b@example.org", "c@example.org"],
                          f"Subject: viesti {n}\r\n\r\nhej {n}\r\n".encode())
        subjects = [m["Subject"] for m in sink.messages()]
    assert subjects == ["viesti 0", "viesti 1", "viesti 2"]
    assert read_mailbox(tmp_path / "mail")[0]["X-Envelope-To"] == "b@example.org, c@example.org"
    assert not list((tmp_path / "mail" / "tmp").iterdir())
