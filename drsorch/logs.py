"""Log lines that say which execution and wave they are about, as text or one JSON object a line.

`DRSORCH_LOG_FORMAT=json` (settings.LOGGING) formats every record with python-json-logger;
`ContextFilter` gives every record `execution_id` and `wave_id` attributes: those passed with
`extra=`, else those bound for the code running now (`bind`, a contextvar, so each thread of
a pool and each execution processed in turn carries its own), else None.
"""

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

CONTEXT_FIELDS = ("execution_id", "wave_id")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("drsorch_log_context", default=None)


@contextlib.contextmanager
def bind(**ids: Any) -> Iterator[None]:
    """Within the block, every log record of this thread carries these ids (execution_id, wave_id)."""
    token = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Adds execution_id and wave_id to every record (None when the line is about neither)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill the context fields the record lacks from the bound context; never drops a record."""
        bound = _context.get() or {}
        for field in CONTEXT_FIELDS:
            if getattr(record, field, None) is None:
                setattr(record, field, bound.get(field))
            else:
                setattr(record, field, str(getattr(record, field)))
        return True


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for `log_format` "text" or "json" (ValueError naming the choices otherwise)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"DRSORCH_LOG_FORMAT must be 'text' or 'json', not {log_format!r}.")
    formatters = {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(execution_id)s %(wave_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "drsorch.logs.ContextFilter"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "botocore": {"level": "WARNING"},
            "django_q": {"level": "WARNING"},
        },
    }
