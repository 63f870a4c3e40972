"""Refuse a front-end whose port is taken before its child exists (it would only be restarted)."""

from __future__ import annotations

import socket

__all__ = ["check_port"]


def check_port(host: str, port: int) -> None:
    """Raise OSError naming ``host:port`` when it cannot be bound now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
