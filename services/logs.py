"""Structured (JSON lines) logging for every service, stdlib and structlog alike.

Log events name ids (feedback_id, action_id, notification_id) and counts, never
feedback text or contact details.
"""
from __future__ import annotations

import logging
import sys

import structlog

_configured = False
REPEAT_WINDOW_S = 30.0


class RepeatFilter(logging.Filter):
    """Lets one copy of a repeated library message through per window.

    While a broker is down, aiokafka logs "Unable connect to node" for every metadata
    attempt, thousands a second while a batch waits for a partition leader; one line
    per window says the same without flooding the log store.
    """

    def __init__(self, window_s: float = REPEAT_WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self.last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -self.window_s) < self.window_s:
            return False
        if len(self.last) > 1000:  # messages with ids in them must not grow it without bound
            self.last.clear()
        self.last[key] = now
        return True


def configure_logging(level: str = "INFO", service: str | None = None) -> None:
    """Route every logger (ours, faust, aiokafka, uvicorn) to one JSON stream on stderr."""
    global _configured
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    structlog.configure(
        # filter_by_level first: a disabled level (a per-request debug line) costs no processing.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(ensure_ascii=False)],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    repeats = RepeatFilter()
    for noisy in ("aiokafka", "kafka", "elastic_transport", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for chatty in ("aiokafka", "elastic_transport"):
        logging.getLogger(chatty).addFilter(repeats)
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
