"""Addresses of this machine: one that is not loopback, for peers the admin plane must not trust."""

from __future__ import annotations

import ipaddress
import socket

import pytest

# A documentation address (RFC 5737, TEST-NET-2): connecting a UDP socket to it sends nothing,
# but picks the address of the interface of the default route.
_ROUTE_PROBE = ("198.51.100.1", 9)


def non_loopback_address() -> str:
    """An IPv4 address of this machine that is not loopback (the default route's interface,
    else any address the host name resolves to); skips the test when the machine has none."""
    candidates: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_ROUTE_PROBE)
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    for candidate in candidates:
        address = ipaddress.ip_address(candidate)
        if not (address.is_loopback or address.is_unspecified):
            with socket.socket() as check:  # it must be bindable: an address of this machine
                try:
                    check.bind((candidate, 0))
                except OSError:
                    continue
            return candidate
    pytest.skip("this machine has no non-loopback IPv4 address to connect from")
