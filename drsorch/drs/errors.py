"""How a DRS error reads: the rules about which failures are safe to retry live here only.

`classify(exc)` sorts every error a DRS call can raise into one `ErrorKind`, and
`explain(exc)` says in one sentence what went wrong and what to fix. The engine decides from
the kind alone: retry later (throttling, 5xx, a blip), keep queueing (a DRS quota), fail now
(a permission, an uninitialized region, a bad request, an unknown server), or count towards a
bound (the endpoint or the credentials fail: DRS may come back within minutes).
"""

import re
from enum import StrEnum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

# Answers that prove DRS did *not* act on the request: safe to send again later.
REJECTED_CODES = frozenset({
    "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException",
    "RequestLimitExceeded", "AccessDeniedException", "UninitializedAccountException",
})
# DRS (or AWS in front of it) asking the caller to slow down.
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})
# Answers that will not change by asking again: the server cannot be launched as asked.
PERMANENT_CODES = frozenset({"ValidationException", "ResourceNotFoundException"})
QUOTA_CODES = frozenset({"ServiceQuotaExceededException"})
FINAL_CODES = frozenset({"AccessDeniedException", "UninitializedAccountException", *PERMANENT_CODES})
# The credentials are refused before DRS looks at the request (STS AssumeRole's answers, and
# the signature checks of every AWS endpoint).
CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "SignatureDoesNotMatch", "AuthFailure", "RequestExpired",
})
# An IAM denial names the action: "... is not authorized to perform: drs:StartRecovery on ...".
_DENIED_ACTION_RE = re.compile(r"not authorized to perform:?\s*([a-z0-9-]+:[A-Za-z0-9]+)")


class ErrorKind(StrEnum):
    """What an error of a DRS call means for the caller."""

    # Throttling, 5xx, a dropped connection: ask again on the next tick, never fail for it.
    RETRY = "retry"
    # A DRS service quota is full: nothing was created; it frees up as jobs end.
    QUOTA = "quota"
    # A server of the request is in an active DRS job (DRS does not say which).
    CONFLICT = "conflict"
    # Asking again gets the same answer: fail now, naming the cause and the fix.
    FINAL = "final"
    # The endpoint cannot be reached or the credentials fail: the request never reached DRS.
    # It may come back; fail only after a bounded time.
    UNREACHABLE = "unreachable"


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


def _status(exc: BaseException) -> int:
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
    return 0


def classify(exc: BaseException) -> ErrorKind:
    """The one reading of an error of a DRS call (see ErrorKind)."""
    code = error_code(exc)
    if isinstance(exc, ClientError):
        if code in THROTTLING_CODES:
            return ErrorKind.RETRY
        if code in QUOTA_CODES:
            return ErrorKind.QUOTA
        if code == "ConflictException":
            return ErrorKind.CONFLICT
        if code in CREDENTIAL_CODES or exc.operation_name == "AssumeRole":
            return ErrorKind.UNREACHABLE
        if code in FINAL_CODES:
            return ErrorKind.FINAL
        if _status(exc) >= 500:
            return ErrorKind.RETRY
        # Any other 4xx is an answer that will not change by itself.
        return ErrorKind.FINAL
    # The connection was never made (refused, no route, DNS, connect timeout) or the request
    # could not be signed: it provably never reached DRS.
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, NoCredentialsError, PartialCredentialsError,
                        CredentialRetrievalError)):
        return ErrorKind.UNREACHABLE
    return ErrorKind.RETRY


def unsent(exc: BaseException) -> bool:
    """True when the request provably never reached DRS (connection or signing failed before
    it was sent), or DRS answered refusing it: nothing was created."""
    if isinstance(exc, ClientError):
        return _status(exc) < 500 and error_code(exc) not in ("", "InternalServerException")
    return classify(exc) == ErrorKind.UNREACHABLE


def denied_action(exc: BaseException) -> str:
    """The IAM action an AccessDeniedException names (`drs:StartRecovery`), "" if none."""
    match = _DENIED_ACTION_RE.search(error_message(exc))
    return match.group(1) if match else ""


def explain(exc: BaseException, *, operation: str = "") -> str:
    """One sentence: what failed and what to fix. `operation` (`StartRecovery`) names the call
    when the error itself does not."""
    code, message = error_code(exc), error_message(exc)
    if code == "AccessDeniedException":
        action = denied_action(exc) or (f"drs:{operation}" if operation else "")
        fix = f"add the IAM permission {action} to the role drsorch uses" if action else "check its IAM policy"
        return f"AWS denied {action or 'the call'} ({message}): {fix}."
    if code == "UninitializedAccountException":
        return (f"Elastic Disaster Recovery is not initialized in this account and region ({message}): "
                "initialize DRS there, or fix the target.")
    if code == "ResourceNotFoundException":
        return f"DRS does not know a server of the request ({message}): sync the inventory and fix the plan."
    if code == "ValidationException":
        return f"DRS refused the request as invalid ({message})."
    if code in QUOTA_CODES:
        return f"A DRS quota is full ({message}); the servers wait until running jobs end."
    if classify(exc) == ErrorKind.UNREACHABLE:
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
            return f"The DRS endpoint cannot be reached ({message}): check the network path to AWS."
        return f"The credentials of the target fail ({code or type(exc).__name__}: {message}): check its role."
    return f"{code or type(exc).__name__}: {message}"


# The older readings, kept for the readers that only need to know whether to give up a tick.

def is_rejected(exc: BaseException) -> bool:
    """DRS answered and refused: nothing was created, the request may be sent again."""
    return error_code(exc) in REJECTED_CODES


def is_permanent(exc: BaseException) -> bool:
    """Asking again will get the same answer."""
    return error_code(exc) in PERMANENT_CODES


def is_throttled(exc: BaseException) -> bool:
    """DRS asked the caller to slow down: it acted on nothing."""
    return error_code(exc) in THROTTLING_CODES


def is_conflict(exc: BaseException) -> bool:
    """A server of the request is in an active DRS job (DRS does not say which)."""
    return error_code(exc) == "ConflictException"


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and network trouble: a reader (job logs, polling) skips this tick and
    asks again; the engine's launch path reads errors with `classify` instead."""
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
