"""Which webhook URLs drsorch may call: http(s) only, and never an address inside the network
drsorch runs in (loopback, private, link-local such as the EC2 metadata service, reserved,
multicast, unspecified) unless DRSORCH_WEBHOOK_ALLOW_PRIVATE is true. Link-local addresses
are refused even then: they hold the cloud's instance metadata and credentials services
(169.254.169.254, fd00:ec2::254, ECS's 169.254.170.2), never a webhook receiver, and a
webhook that reached them would hand their answers to whoever set the URL.

The check resolves the host name; the sender then connects to the very address that was
checked (sending.py), so a DNS answer that changes between check and connect (rebinding)
cannot reach a private address.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class PrivateAddressError(ValueError):
    """The URL's host is or resolves to an address drsorch must not call."""


class UnresolvableHost(ValueError):
    """The URL's host name did not resolve."""


# Never called, whatever DRSORCH_WEBHOOK_ALLOW_PRIVATE says (link-local covers the rest).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def _is_metadata(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    address = _unmapped(address)
    return address.is_link_local or address in METADATA_ADDRESSES


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_private(mapped)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def parse_webhook_url(url: str):
    """(scheme, host, port, path with query) of a webhook URL, or ValueError naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("Enter the webhook's URL.")
    if any(ch in url for ch in "\x00\r\n\t ") or not url.isprintable():
        raise ValueError("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("Enter a valid URL such as https://hooks.example.com/drsorch.")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("Only http and https webhook URLs are allowed.")
    host = parts.hostname
    if not host:
        raise ValueError("Enter a valid URL such as https://hooks.example.com/drsorch.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("Put no user name or password in the URL; use the secret to authenticate.")
    try:
        host.encode("idna")
    except UnicodeError:
        raise ValueError("The URL's host name is not valid.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or DEFAULT_PORTS[scheme], path


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IP literals as themselves)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnresolvableHost(f"The host name {host} did not resolve: {exc}.")
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"The host name {host} did not resolve.")
    return addresses


def check_addresses(host: str, addresses: list[str]) -> None:
    """Refuse when any address of `host` is link-local (always) or private (unless
    DRSORCH_WEBHOOK_ALLOW_PRIVATE)."""
    for text in addresses:
        if _is_metadata(ipaddress.ip_address(text)):
            shown = host if host == text else f"{host} ({text})"
            raise PrivateAddressError(
                f"The URL's host {shown} is a link-local address (the instance metadata service lives "
                "there), which webhooks may never call."
            )
    if settings.DRSORCH_WEBHOOK_ALLOW_PRIVATE:
        return
    for text in addresses:
        address = ipaddress.ip_address(text)
        if _is_private(address):
            shown = host if host == text else f"{host} ({text})"
            raise PrivateAddressError(
                f"The URL's host {shown} is a loopback, private, link-local or reserved address, which "
                "webhooks may not call (set DRSORCH_WEBHOOK_ALLOW_PRIVATE=true to allow it)."
            )


def check_webhook_url(url: str):
    """Parse `url`, resolve its host and refuse private addresses. Returns (scheme, host, port,
    path, addresses): the addresses checked, for the sender to connect to."""
    scheme, host, port, path = parse_webhook_url(url)
    addresses = resolve(host, port)
    check_addresses(host, addresses)
    return scheme, host, port, path, addresses
