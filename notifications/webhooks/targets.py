"""Which URLs may receive webhooks: http(s) only, and no private address unless an administrator allowed it.

A subscription's URL is resolved when it is saved and again before every delivery (a name that resolved to a
public address may later point inside the network). Refused unless the subscription has `allow_private`: loopback,
private (RFC 1918, ULA), link-local (the cloud metadata address 169.254.169.254 among them), multicast, reserved
and unspecified addresses. What is left: a name that changes between our check and the connection (DNS rebinding
within the resolver's cache time); SECURITY.md says so.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["TargetRefused", "check_target"]


class TargetRefused(ValueError):
    """A URL that may not receive deliveries; the message says why, `reason` is a stable key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused("unresolvable", f"the host {host} does not resolve: {exc}") from None
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified)


def check_target(url: str, *, allow_private: bool) -> None:
    """Raise TargetRefused unless the URL may receive deliveries."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("scheme", "the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise TargetRefused("host", "the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials", "the URL may not carry a user name or password")
    if allow_private:
        return
    if parts.scheme != "https":
        raise TargetRefused("scheme", "deliveries to a public address use https://")
    port = parts.port or 443
    for address in _addresses(parts.hostname, port):
        if _private(address):
            raise TargetRefused("private", f"{parts.hostname} resolves to {address}, a private or local address; "
                                           "an administrator must allow private addresses for this subscription")
