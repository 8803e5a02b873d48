"""One sentence for "the backend did not answer", the same for every adapter and command.

aiohttp's `ClientConnectorError` renders as a repr of its connection key (`ClientConnectorError(ConnectionKey(
host='localhost', port=1, is_ssl=False, ...`), which is what an operator saw when an emulator variable pointed
at a closed port. The adapters turn it into `Pub/Sub at localhost:1 did not answer (connection refused)`.
"""

from __future__ import annotations

import socket

import aiohttp


def connection_failure(service: str, exc: BaseException) -> str | None:
    """`{service} at host:port did not answer (why)` when `exc` is a failure to connect; None otherwise."""
    if not isinstance(exc, aiohttp.ClientConnectorError):
        return None
    return f"{service} at {exc.host}:{exc.port} did not answer ({_reason(exc.os_error)})"


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return "timed out"
    return (error.strerror or type(error).__name__).lower()
