"""POST a notification to a webhook: drsorch's signed JSON, or a Slack or Teams message.

The host is resolved and checked at send time (addresses.py) and the connection goes to the
address that was checked, with the URL's host in the Host header and, for https, as the TLS
server name (SNI and certificate check): a DNS answer that changes after the check cannot
redirect the request to a private address. Redirects are not followed.
"""

import hashlib
import hmac
import http.client
import json
import socket
import ssl

from . import Sent
from .addresses import PrivateAddressError, UnresolvableHost, check_webhook_url

TIMEOUT_SECONDS = 10
USER_AGENT = "drsorch-webhook/1.0"
SIGNATURE_HEADER = "X-Drsorch-Signature"
DELIVERY_HEADER = "X-Drsorch-Delivery"
MAX_ERROR_BODY = 500


def signature(secret: str, body: bytes) -> str:
    """The X-Drsorch-Signature value of `body`: sha256=<hex HMAC-SHA256 with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(document: dict) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=False).encode()


def _connection(scheme: str, host: str, port: int, addresses: list[str]):
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_SECONDS,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)

    # http.client connects through this attribute: pin it to the checked addresses (in DNS's
    # order, the next one when one does not answer), while the host name stays what the Host
    # header and TLS (SNI, certificate) use.
    def connect_to_checked_address(_address, timeout=TIMEOUT_SECONDS, source_address=None):
        error = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error

    connection._create_connection = connect_to_checked_address
    return connection


def post(*, url: str, body: bytes, secret: str = "", delivery_id: int | None = None) -> Sent:
    """POST `body` (JSON) to `url`; delivered on a 2xx answer. `delivery_id` (the outbox row)
    is sent as X-Drsorch-Delivery, the same on every retry, for receivers that deduplicate."""
    try:
        scheme, host, port, path, addresses = check_webhook_url(url)
    except (PrivateAddressError, UnresolvableHost, ValueError) as exc:
        return Sent(ok=False, error=f"Refused: {exc}" if isinstance(exc, PrivateAddressError) else str(exc))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": str(len(body)),
    }
    if delivery_id is not None:
        headers[DELIVERY_HEADER] = str(delivery_id)
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    connection = _connection(scheme, host, port, addresses)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_ERROR_BODY)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Sent(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Sent(ok=True, status_code=response.status)
    text = answer.decode("utf-8", "replace").strip()
    return Sent(ok=False, status_code=response.status,
                error=f"HTTP {response.status} {response.reason}" + (f": {text}" if text else ""))
