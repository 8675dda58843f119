"""Audit events (SPEC §8): one structured JSON line per security-relevant action.

Chalice names its own logger after the app (``tessera``), sets it to ERROR and
turns its propagation off, so anything logged at INFO under that name, or under a
child of it that propagates, is dropped. The audit logger is ours:
``tessera.audit`` at INFO, with its own handler that writes one JSON object per
line to the process's stdout as it is at that moment. Lambda's runtime captures
stdout into the function's log group, ``make run`` prints it, and tests read it
with ``capsys``. It does not propagate, so a root handler (Lambda's, or
``logging.basicConfig``'s) never prints an event twice.

Call sites log either ``log.info(json.dumps({"event": ..., ...}))`` or
``event(name, **fields)``; both become the same line. No secret goes in: as a
last guard, anything shaped like one of our opaque secrets is redacted.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

LOGGER_NAME = "tessera.audit"
REDACTED = "[redacted]"

# An opaque secret of ours (chalicelib.security.opaque, SPEC §4 and §11): type
# prefix, base62 body.
_SECRET = re.compile(r"ts[prkdcwbie]_[0-9A-Za-z]{16,}")


class JsonLines(logging.Formatter):
    """``{"time", "level", "event", ...fields}`` on one line, secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "audit", None)
        if not isinstance(fields, dict):
            message = record.getMessage()
            try:
                fields = json.loads(message)
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                fields = {"event": "log", "message": message}
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, **fields}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _SECRET.sub(REDACTED, json.dumps(line, separators=(",", ":"), default=str))


class CurrentStdout(logging.Handler):
    """Writes each line to ``sys.stdout`` as it is now (Lambda, pytest and runners swap it),
    or to ``sys.stderr`` in a command whose stdout is its answer (the admin command), or to
    a file of their own (the benchmark's, whose stdout is its report).
    """

    stream_name = "stdout"
    stream: IO[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream or (sys.stderr if self.stream_name == "stderr" else sys.stdout)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _configure() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, CurrentStdout) for h in logger.handlers):
        handler = CurrentStdout()
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


log = _configure()


def send_to(target: str | IO[str]) -> None:
    """Route audit lines to ``stdout`` (the default), ``stderr`` or an open text file."""
    for handler in log.handlers:
        if isinstance(handler, CurrentStdout):
            if isinstance(target, str):
                handler.stream_name, handler.stream = target, None
            else:
                handler.stream = target


def event(name: str, **fields: Any) -> None:
    """Log one audit event: ``{"event": name, **fields}``. Never pass a secret."""
    log.info(name, extra={"audit": {"event": name, **fields}})
