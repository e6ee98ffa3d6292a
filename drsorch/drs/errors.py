"""How a DRS error reads: the rules about which failures are safe to retry live here only."""

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

# Answers that prove DRS did *not* act on the request: safe to send again later.
REJECTED_CODES = frozenset({
    "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException",
    "RequestLimitExceeded", "AccessDeniedException", "UninitializedAccountException",
})
# DRS (or AWS in front of it) asking the caller to slow down.
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
# Answers that will not change by asking again: the server cannot be launched as asked.
PERMANENT_CODES = frozenset({"ValidationException", "ResourceNotFoundException"})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (`ThrottlingException`...), "" for anything else."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def error_message(exc: BaseException) -> str:
    """The message DRS gave with its error, or the exception's text."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message") or str(exc)
    return str(exc)


def is_rejected(exc: BaseException) -> bool:
    """DRS answered and refused: nothing was created, the request may be sent again."""
    return error_code(exc) in REJECTED_CODES


def is_permanent(exc: BaseException) -> bool:
    """Asking again will get the same answer."""
    return error_code(exc) in PERMANENT_CODES


def is_conflict(exc: BaseException) -> bool:
    """A server of the request is in an active DRS job (DRS does not say which)."""
    return error_code(exc) == "ConflictException"


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and network trouble: retry later, never fail an execution for it."""
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error_code(exc) in REJECTED_CODES
    return isinstance(exc, BotoCoreError)


def is_worth_retrying_soon(exc: BaseException) -> bool:
    """Throttling, 5xx and network trouble: a read may be asked again after a short pause. Unlike
    `is_transient`, a denial or an uninitialized region is not: it will not change in seconds."""
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error_code(exc) in THROTTLING_CODES
    return False


def describe(exc: BaseException) -> str:
    """One line naming the error: `ThrottlingException: Rate exceeded`."""
    code = error_code(exc)
    message = " ".join(error_message(exc).split())
    return f"{code}: {message}" if code else message or type(exc).__name__
