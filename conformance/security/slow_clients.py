#!/usr/bin/env python3
"""Slow clients cannot starve the server.

usage: slow_clients.py URL [SECONDS]

500 tricklers, spread over the source addresses 127.0.0.2-127.0.0.21, each send a request one
byte every 1-2 s: half of them dribble their headers (the server must close them at its header
timeout), half send headers at once and then dribble a body (they never stall long enough for
the body idle timeout, so they hold their connection). A trickler whose connection is closed
opens another. Meanwhile GET /api/v1/health from 127.0.0.1 every 0.5 s must answer 200 within
1 s, every time. Exit 0 only then; a summary is printed either way.
"""

import asyncio
import random
import resource
import ssl
import sys
import time
import urllib.parse

TRICKLERS = 500
SOURCES = [f"127.0.0.{i}" for i in range(2, 22)]
PROBE_EVERY = 0.5
PROBE_LIMIT = 1.0
# Below the JSON body limit (64 KiB), so the server reads the body rather than refusing it.
BODY_LENGTH = 60000


def raise_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        if hard != resource.RLIM_INFINITY and hard < needed:
            print(f"open file limit {soft}/{hard} is below the {needed} this test needs", file=sys.stderr)
            sys.exit(2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Stats:
    def __init__(self):
        self.opened = 0
        self.closed_by_server = 0
        self.open_now = 0
        self.peak_open = 0
        self.connect_failures = 0
        self.probes = []  # (status or error, seconds)


async def open_from(host, port, source, tls):
    return await asyncio.open_connection(
        host, port, local_addr=(source, 0), ssl=tls, server_hostname=host if tls else None
    )


async def trickler(n, host, port, tls, end, stats):
    source = SOURCES[n % len(SOURCES)]
    body = n % 2 == 1
    rng = random.Random(n)
    # Start spread over the first two seconds, not all in one burst.
    await asyncio.sleep(rng.uniform(0, 2))
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.wait_for(open_from(host, port, source, tls), 5)
        except (OSError, asyncio.TimeoutError):
            stats.connect_failures += 1
            await asyncio.sleep(1)
            continue
        stats.opened += 1
        stats.open_now += 1
        stats.peak_open = max(stats.peak_open, stats.open_now)
        if body:
            head = (
                f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {BODY_LENGTH}\r\n\r\n"
            ).encode()
            dribble = b'{"username": "' + b"a" * BODY_LENGTH
        else:
            head = f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
            dribble = b"a" * 100000
        closed = asyncio.ensure_future(reader.read(-1))
        try:
            writer.write(head)
            await writer.drain()
            for i in range(len(dribble)):
                done, _ = await asyncio.wait([closed], timeout=rng.uniform(1, 2))
                if done or time.monotonic() >= end:
                    break
                writer.write(dribble[i : i + 1])
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        by_server = closed.done() or time.monotonic() < end
        if by_server:
            stats.closed_by_server += 1
        closed.cancel()
        stats.open_now -= 1
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def probe(host, port, tls, stats):
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(open_from(host, port, "127.0.0.1", tls), 10)
        writer.write(f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(-1), 10)
        writer.close()
        status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    except (OSError, asyncio.TimeoutError, IndexError) as e:
        status = type(e).__name__
    stats.probes.append((status, time.monotonic() - start))


async def main(url, seconds):
    u = urllib.parse.urlsplit(url)
    tls = None
    if u.scheme == "https":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    host, port = u.hostname, u.port or (443 if tls else 80)
    stats = Stats()
    end = time.monotonic() + seconds
    tasks = [asyncio.ensure_future(trickler(n, host, port, tls, end, stats)) for n in range(TRICKLERS)]
    probes = []
    # Probes begin once the tricklers are all in (they start over the first two seconds).
    await asyncio.sleep(2.5)
    while time.monotonic() < end:
        probes.append(asyncio.ensure_future(probe(host, port, tls, stats)))
        await asyncio.sleep(PROBE_EVERY)
    await asyncio.gather(*probes)
    await asyncio.gather(*tasks)

    bad = [(s, t) for s, t in stats.probes if s != "200" or t > PROBE_LIMIT]
    worst = max((t for _, t in stats.probes), default=0.0)
    print(
        f"{len(stats.probes)} health probes, worst {worst * 1000:.0f} ms, {len(bad)} late or failed; "
        f"{TRICKLERS} tricklers from {len(SOURCES)} addresses opened {stats.opened} connections "
        f"(peak {stats.peak_open} open at once, {stats.connect_failures} failed to connect), "
        f"the server closed {stats.closed_by_server}"
    )
    for s, t in bad[:10]:
        print(f"  probe: {s} after {t * 1000:.0f} ms")
    ok = (
        not bad
        and len(stats.probes) >= int((seconds - 3) / PROBE_EVERY)
        # The test tested something: nearly every trickler held a connection at once, and
        # the header dribblers were cut off.
        and stats.peak_open >= TRICKLERS * 9 // 10
        and stats.closed_by_server > 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    raise_file_limit(TRICKLERS + 200)
    sys.exit(asyncio.run(main(sys.argv[1].rstrip("/"), float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)))
