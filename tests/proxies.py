"""Proxies in front of the test broker, for what Tansu does not do itself: Tansu speaks
plaintext and no SASL, so

- :class:`TlsProxy` terminates TLS and forwards each connection: clients configured with
  ``security_protocol = "SSL"`` reach a real broker over a real TLS handshake, checked
  against a CA file;
- :class:`SaslProxy` answers the Kafka protocol's SASL exchange itself (mechanism PLAIN,
  checked against its users), then forwards the authenticated connection: clients
  configured with ``security_protocol = "SASL_PLAINTEXT"`` authenticate for real, and a
  wrong password is refused the way a Kafka broker refuses it.

Start Tansu with ``advertised_port=proxy.port``, so that the metadata sends clients back
through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import subprocess
import threading
from pathlib import Path

from brokers import free_port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, made by openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "broker.pem", folder / "broker.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class _Proxy:
    """Listens on :attr:`port` in a thread of its own; each client connection is handed to
    :meth:`_client`, with a connection to ``upstream`` for it."""

    ssl_context: ssl.SSLContext | None = None

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Proxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the {type(self).__name__} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port, ssl=self.ssl_context)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):  # connections still open
                task.cancel()
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(asyncio.sleep(0.1))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            if await self._client(reader, writer, up_reader, up_writer):
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    async def _client(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        """What happens before the connection is piped through; False closes it."""
        raise NotImplementedError


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await src.read(1 << 16):
            dst.write(data)
            await dst.drain()
    with contextlib.suppress(Exception):
        dst.close()


class TlsProxy(_Proxy):
    """Accepts TLS, forwards plaintext; counts completed handshakes (a plaintext client never
    completes one)."""

    def __init__(self, upstream: int, cert: Path, key: Path) -> None:
        super().__init__(upstream)
        self.handshakes = 0
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.load_cert_chain(cert, key)

    async def _client(self, *_: object) -> bool:
        self.handshakes += 1  # called once the TLS handshake has completed
        return True


# -- SASL ----------------------------------------------------------------------------------
# The Kafka protocol (kafka.apache.org/protocol): a request is a 4-byte size, then the
# header (api_key int16, api_version int16, correlation_id int32, client_id as an int16-
# length string; flexible versions add tagged fields) and the body. A response is the size,
# the correlation id (flexible versions add tagged fields) and the body.

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return int(value)

    def bytes(self, n: int) -> bytes:
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self.data[self.at]
            self.at += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.bytes(self.uvarint())


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


async def _frame(reader: asyncio.StreamReader) -> bytes | None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        return await reader.readexactly(size)
    return None


def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(struct.pack(">i", len(payload)) + payload)


class SaslProxy(_Proxy):
    """SASL/PLAIN in front of the broker: ApiVersions is passed through (Tansu lists the
    SASL requests), SaslHandshake and SaslAuthenticate (versions 0 to 2) are answered here,
    and only an authenticated connection reaches the broker. Counts the connections
    authenticated and refused."""

    def __init__(self, upstream: int, users: dict[str, str]) -> None:
        super().__init__(upstream)
        self.users = users
        self.authenticated = 0
        self.refused = 0

    async def _client(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        raw_token = False  # SaslHandshake v0: the token follows as bare bytes
        while (frame := await _frame(reader)) is not None:
            if raw_token:
                ok = self._check(frame)
                if ok:
                    _send(writer, b"")
                    await writer.drain()
                return ok
            r = _Reader(frame)
            api_key, version, correlation = r.take(">h"), r.take(">h"), r.take(">i")
            client_id = r.take(">h")
            r.bytes(max(client_id, 0))
            if api_key == API_VERSIONS:  # allowed before authentication
                up_writer.write(struct.pack(">i", len(frame)) + frame)
                answer = await _frame(up_reader)
                if answer is None:
                    return False
                _send(writer, answer)
            elif api_key == SASL_HANDSHAKE:
                mechanism = r.bytes(r.take(">h")).decode()
                error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
                body = struct.pack(">ihi", correlation, error, 1) + _string("PLAIN")
                _send(writer, body)
                raw_token = error == 0 and version == 0
            elif api_key == SASL_AUTHENTICATE:
                flexible = version >= 2
                if flexible:
                    r.tagged_fields()
                    token = r.bytes(r.uvarint() - 1)
                else:
                    token = r.bytes(r.take(">i"))
                ok = self._check(token)
                error, message = (0, None) if ok else (SASL_AUTHENTICATION_FAILED, "bad creds")
                if flexible:
                    body = struct.pack(">i", correlation) + _uvarint(0) + struct.pack(">h", error)
                    body += _uvarint(0) if message is None else _uvarint(len(message) + 1)
                    body += (message or "").encode() + _uvarint(1)  # no auth bytes
                    body += struct.pack(">q", 0) + _uvarint(0)
                else:
                    body = struct.pack(">ih", correlation, error) + _string(message)
                    body += struct.pack(">i", 0)
                    if version >= 1:
                        body += struct.pack(">q", 0)  # session lifetime: no re-authentication
                _send(writer, body)
                await writer.drain()
                return ok
            else:  # a Kafka broker takes nothing else before authentication
                self.refused += 1
                return False
            await writer.drain()
        return False

    def _check(self, token: bytes) -> bool:
        """A PLAIN token: authorisation id, user name and password, NUL-separated
        (RFC 4616)."""
        parts = token.split(b"\0")
        ok = len(parts) == 3 and self.users.get(parts[1].decode(errors="replace")) == parts[
            2
        ].decode(errors="replace")
        if ok:
            self.authenticated += 1
        else:
            self.refused += 1
        return ok
