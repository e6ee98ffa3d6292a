"""Helpers shared by the simulated DRS and EC2: errors, input checks, times and paging."""

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta

SOURCE_SERVER_ID_RE = re.compile(r"^s-[0-9a-zA-Z]{17}$")
JOB_ID_RE = re.compile(r"^drsjob-[0-9a-zA-Z]{17}$")
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-fA-F]{8,17}$")
SNAPSHOT_ID_RE = re.compile(r"^pit-[0-9a-zA-Z]{17}$")
DATETIME_RE = re.compile(
    r"^[1-9][0-9]*-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([0-1][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?Z$"
)

# HTTP status of each DRS error, as botocore's model declares it.
DRS_ERROR_STATUS = {
    "AccessDeniedException": 403,
    "ConflictException": 409,
    "InternalServerException": 500,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "UninitializedAccountException": 400,
    "ValidationException": 400,
}


class SandboxError(Exception):
    """An error answer: the error code, its message and the extra members of its shape."""

    def __init__(self, code, message, status=None, **fields):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or DRS_ERROR_STATUS.get(code, 400)
        self.fields = {key: value for key, value in fields.items() if value is not None}


def validation_error(message, *, field=None, reason="fieldValidationFailed"):
    """A ValidationException naming the field at fault, as DRS answers bad input."""
    field_list = [{"name": field, "message": message}] if field else None
    return SandboxError("ValidationException", message, reason=reason, fieldList=field_list)


def iso(moment):
    """A datetime as DRS writes it: UTC, second precision, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_duration(seconds):
    """Seconds as an ISO-8601 duration (PT5M30S), as DRS writes lagDuration."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs or text == "PT":
        text += f"{secs}S"
    return text


def parse_iso(value, *, field):
    """Read an ISO-8601 datetime of a request, or answer ValidationException."""
    if not isinstance(value, str) or not DATETIME_RE.match(value):
        raise validation_error(f"{field} must be an ISO-8601 date and time such as 2026-01-31T12:00:00Z.", field=field)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds(value):
    """A timedelta of `value` seconds."""
    return timedelta(seconds=value)


def check_ids(values, pattern, *, field, kind, minimum=0, maximum=None):
    """Check a list of IDs of one kind: a list, within its size bounds, each well-formed."""
    if values is None:
        values = []
    if not isinstance(values, list):
        raise validation_error(f"{field} must be a list.", field=field)
    if len(values) < minimum:
        raise validation_error(f"{field} must contain at least {minimum} item(s).", field=field)
    if maximum is not None and len(values) > maximum:
        raise validation_error(f"{field} must contain at most {maximum} items.", field=field)
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            raise validation_error(f"{value!r} is not a valid {kind}.", field=field)
    return values


def page_bounds(body, *, default_size):
    """(offset, size) of the page a request asks for, from maxResults and nextToken."""
    size = body.get("maxResults", default_size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise validation_error("maxResults must be a positive integer.", field="maxResults")
    token = body.get("nextToken")
    if not token:
        return 0, size
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise validation_error("nextToken is not a token this API returned.", field="nextToken")
    if not isinstance(offset, int) or offset < 0:
        raise validation_error("nextToken is not a token this API returned.", field="nextToken")
    return offset, size


def next_token(offset):
    """The opaque token that resumes a listing at `offset`."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def paged(sliceable, body, *, default_size=1000):
    """One page of `sliceable` (a list or a queryset) and the token of the next page, if any."""
    offset, size = page_bounds(body, default_size=default_size)
    window = list(sliceable[offset:offset + size + 1])
    token = next_token(offset + size) if len(window) > size else None
    return window[:size], token


def with_token(payload, token):
    """Add nextToken to an answer only when there is a next page."""
    if token:
        payload["nextToken"] = token
    return payload
