"""The launcher binds a socket on which accepted connections keep TCP_NODELAY (app/serve.py)."""

from __future__ import annotations

import asyncio
import socket

from app.serve import tcp_socket


def test_accepted_connections_have_nagle_off():
    async def accepted_nodelay() -> int:
        listener = tcp_socket("127.0.0.1", 0)
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
    assert tcp_socket("127.0.0.1", 0).proto == socket.IPPROTO_TCP
