"""Loopback ports for tests: one free to listen on, or one where a connection is refused."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on at this moment (the OS just handed it out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    return free_port()


def closed_port_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    return f"http://127.0.0.1:{closed_port()}"
