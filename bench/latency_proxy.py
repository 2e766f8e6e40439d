"""A TCP proxy on loopback that makes a link look like a real network: round trip and shared rate.

Not part of medcat: ``bench/fetch.py`` puts it in front of nginx, because this kernel has no
``netem``. Every chunk is held for half the round trip in each direction, and all connections
share one rate per direction (a virtual clock: a chunk leaves when the link is free, so many
connections split the rate between them). A new connection is held one round trip before its
first bytes flow, as a TCP handshake over such a link would cost. Queues are unbounded (no loss,
no congestion control): it models latency and a bottleneck rate, not a lossy path.

Usage::

    python bench/latency_proxy.py --listen-port 0 --upstream 127.0.0.1:8080 --rtt-ms 40 --mbit 100

It prints ``port <N>`` once listening, then runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

CHUNK_BYTES = 64 * 1024


class Link:
    """One direction of the shared bottleneck: a rate in bytes per second and when it is next free."""

    def __init__(self, bytes_per_s: float) -> None:
        self.bytes_per_s = bytes_per_s
        self.free_at = 0.0

    def reserve(self, n_bytes: int, not_before: float) -> float:
        """Book ``n_bytes`` on the link no earlier than ``not_before``; return when they are through."""
        start = max(self.free_at, not_before)
        self.free_at = start + n_bytes / self.bytes_per_s
        return self.free_at


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link, delay_s: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while data := await reader.read(CHUNK_BYTES):
            queue.put_nowait((link.reserve(len(data), time.monotonic()) + delay_s, data))
        queue.put_nowait((0.0, b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def handler_for(upstream: tuple[str, int], rtt_s: float, bytes_per_s: float) -> Handler:
    """Return the connection handler of a proxy to ``upstream`` (its links shared by all connections)."""
    down, up = Link(bytes_per_s), Link(bytes_per_s)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(rtt_s)  # the handshake's round trip
        try:
            server_r, server_w = await asyncio.open_connection(*upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pump(client_r, server_w, up, rtt_s / 2), _pump(server_r, client_w, down, rtt_s / 2), return_exceptions=True
        )
        for w in (client_w, server_w):
            w.close()

    return handle


async def main_async(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    handler = handler_for((host, int(port)), args.rtt_ms / 1000, args.mbit * 1e6 / 8)
    server = await asyncio.start_server(handler, "127.0.0.1", args.listen_port, backlog=512)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to (loopback)")
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--mbit", type=float, default=100.0, help="shared rate per direction, Mbit/s")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
