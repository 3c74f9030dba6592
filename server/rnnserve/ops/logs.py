"""Logging: the call's request id on every log line, and an optional JSON line format.

The admission interceptor (``edge/admission.py``) puts each call's request id in
:data:`request_id_var` before the servicer runs; a context variable follows the call's
asyncio task, and work a worker thread does for the call runs in a copy of the call's
context (``runtime/assistant_worker.py``), so every log line written about the call carries its id.
:class:`RequestIdFilter` copies it onto each record as ``record.request_id`` ("-" outside
a call) and :func:`configure_logging` installs it with the text or JSON format. Under
``rnnserve serve --workers N`` every replica's lines also name the replica (1..N, from
:data:`REPLICA_ENV`), since they all reach the supervisor's stderr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

#: The request id of the call being served (None outside a call).
request_id_var: ContextVar[str | None] = ContextVar("rnnserve_request_id", default=None)

#: Client-supplied ids are accepted only in this shape (no log injection, bounded size).
_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
#: The replica number (1..N) ``rnnserve serve --workers N`` gives each replica process.
REPLICA_ENV = "RNNSERVE_REPLICA"
LOG_FORMATS = ("text", "json")


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def request_id_from(value: str | bytes | None) -> str:
    """The client's ``x-request-id`` if it is well formed (1-64 of ``[A-Za-z0-9._:-]``), else a new id."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if value and _VALID_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the current call's id ("-" outside a call); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


def _present(request_id: str | None) -> str | None:
    return None if request_id in (None, "", "-") else request_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, thread (and exc; and
    replica, in a replica of ``serve --workers``)."""

    def __init__(self, replica: int | None = None) -> None:
        super().__init__()
        self.replica = replica

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _present(getattr(record, "request_id", None)) or request_id_var.get(),
            "thread": record.threadName,
        }
        if self.replica is not None:
            entry["replica"] = self.replica
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def make_handler(fmt: str = "text", stream: object = None) -> logging.Handler:
    """A stream handler (stderr by default) in ``fmt`` with the request-id filter; in a replica
    (:data:`REPLICA_ENV` set) each line names it ("[replica 2]" in text, ``"replica": 2`` in JSON)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; valid: {', '.join(LOG_FORMATS)}")
    replica = int(os.environ[REPLICA_ENV]) if os.environ.get(REPLICA_ENV, "").isdigit() else None
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(RequestIdFilter())
    text = TEXT_FORMAT if replica is None else TEXT_FORMAT.replace("%(name)s", f"[replica {replica}] %(name)s")
    handler.setFormatter(JsonFormatter(replica) if fmt == "json" else logging.Formatter(text))
    return handler


def configure_logging(level: int = logging.INFO, fmt: str = "text") -> None:
    """Log to stderr in ``fmt`` ("text" or "json"), every record tagged with its request id.

    The process's first configuration wins (like ``logging.basicConfig``), except that
    ``rnnserve serve`` may switch the format it installed earlier; handlers someone else
    installed (a test runner's, an embedding application's) are left alone.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_rnnserve", False)]
    if root.handlers and not ours:
        return
    for h in ours:
        root.removeHandler(h)
    handler = make_handler(fmt)
    handler._rnnserve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
