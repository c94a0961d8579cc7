"""Socket Mode in the stand-in: the WebSocket that `apps.connections.open` hands out (RFC 6455, minimal).

The stand-in greets a connecting app with `hello`, pushes envelopes (`slash_commands`,
`interactive`, `events_api`) and collects the app's acks by `envelope_id`, as Slack does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import uuid
from io import BufferedIOBase
from typing import IO, Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(client_key: str) -> str:
    return base64.b64encode(hashlib.sha1((client_key + GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A server frame: final, unmasked."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def _read_exact(stream: BufferedIOBase | IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise ConnectionError("socket closed")
    return data


def read_frame(stream: BufferedIOBase | IO[bytes]) -> tuple[bool, int, bytes]:
    """One client frame: (final, opcode, unmasked payload)."""
    first, second = _read_exact(stream, 2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _read_exact(stream, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exact(stream, 8))
    mask = _read_exact(stream, 4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exact(stream, length)))
    return bool(first & 0x80), first & 0x0F, payload


class SocketModeConnection:
    """One connected app: envelopes go out, acks come back."""

    def __init__(
        self, sock: socket.socket, reader: BufferedIOBase | IO[bytes], app_id: str
    ) -> None:
        self.sock = sock
        self.reader = reader
        self.app_id = app_id
        self.closed = False
        self._send_lock = threading.Lock()
        self._acks: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self.received: list[Any] = []

    def send_json(self, message: dict[str, Any]) -> None:
        self._send(OP_TEXT, json.dumps(message).encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(encode_frame(opcode, payload))

    def serve(self) -> None:
        """Run on the HTTP handler's thread until the app or the stand-in closes the socket."""
        self.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "standin", "approximate_connection_time": 3600},
                "connection_info": {"app_id": self.app_id},
            }
        )
        parts: list[bytes] = []
        try:
            while not self.closed:
                final, opcode, payload = read_frame(self.reader)
                if opcode == OP_PING:
                    self._send(OP_PONG, payload)
                elif opcode == OP_CLOSE:
                    self._send(OP_CLOSE, payload[:2])
                    break
                elif opcode in (OP_TEXT, OP_CONTINUATION):
                    parts.append(payload)
                    if final:
                        self._received(b"".join(parts))
                        parts = []
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            self.closed = True
            with self._changed:
                self._changed.notify_all()

    def _received(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            return
        with self._changed:
            self.received.append(message)
            if isinstance(message, dict) and message.get("envelope_id"):
                self._acks[str(message["envelope_id"])] = dict(message.get("payload") or {})
            self._changed.notify_all()

    def envelope(self, kind: str, payload: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Push one envelope and wait for its ack; the ack's payload (the app's response body)."""
        envelope_id = str(uuid.uuid4())
        self.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                **({"retry_attempt": 0, "retry_reason": ""} if kind == "events_api" else {}),
            }
        )
        with self._changed:
            if (
                not self._changed.wait_for(
                    lambda: envelope_id in self._acks or self.closed, timeout
                )
                or envelope_id not in self._acks
            ):
                raise AssertionError(f"no ack for the {kind} envelope within {timeout}s")
            return self._acks.pop(envelope_id)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._send(OP_CLOSE, struct.pack("!H", 1001))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
