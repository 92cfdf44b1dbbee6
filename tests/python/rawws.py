"""A raw WebSocket client (RFC 6455, text frames, wamp.2.json) in a few lines of asyncio, for tests that
must see exactly what the gateway puts on the wire: no client library in between that could filter,
reorder or hide a message. Also lets a test stop reading, like a stalled browser tab."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct


class RawWs:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", protocol: str = "wamp.2.json", rcvbuf: int | None = None):
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            import socket

            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def send(self, message) -> None:
        await self.send_frame(0x1, json.dumps(message).encode())

    async def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def recv(self, timeout: float = 5.0):
        """The next WAMP message, or None once the gateway closed (close code in `close_code`)."""
        while True:
            try:
                opcode, payload = await asyncio.wait_for(self.recv_frame(), timeout)
            except asyncio.IncompleteReadError:
                return None
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return None
            if opcode in (0x1, 0x2):
                return json.loads(payload)

    async def join(self, realm: str = "realm1") -> int:
        await self.send([1, realm, {"roles": {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}}])
        welcome = await self.recv()
        assert welcome and welcome[0] == 2, welcome
        self.welcome = welcome
        return welcome[1]

    def close(self) -> None:
        self.writer.close()
