#!/usr/bin/env python3
"""Loopback load helper for the end-to-end benchmark (standard library only).

burst: open N connections, wait until all are connected, then send one request on each at
       the same instant; print a status histogram.
users: send one request per user id 0..N-1 (header X-Callout-User-Id), at most C at a time.
hold:  open N keep-alive connections, send one request on each, keep them open S seconds.
Every mode is bounded by --timeout seconds.
"""
import argparse
import asyncio
import collections
import sys
import time


async def one_request(host, port, path, headers, start=None, keep_open=None, connected=None):
    reader, writer = await asyncio.open_connection(host, port)
    if connected is not None:
        connected.append(1)
    try:
        if start is not None:
            await start.wait()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append("Connection: keep-alive" if keep_open is not None else "Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1]) if status_line else 0
        length = None
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is not None:
            await reader.readexactly(length)
        elif keep_open is None:
            await reader.read()
        if keep_open is not None:
            await keep_open.wait()
        return status
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["burst", "users", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("-H", "--header", action="append", default=[])
    p.add_argument("-n", "--count", type=int, default=1000)
    p.add_argument("-c", "--concurrency", type=int, default=100)
    p.add_argument("--hold-seconds", type=float, default=5)
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    headers = [tuple(s.strip() for s in h.split(":", 1)) for h in a.header]
    started = time.monotonic()
    results = collections.Counter()

    async def guarded(coro):
        try:
            results[await coro] += 1
        except Exception as e:  # noqa: BLE001 - counted, not raised
            results[type(e).__name__] += 1

    if a.mode == "burst":
        start, connected = asyncio.Event(), []
        tasks = [asyncio.create_task(guarded(one_request(a.host, a.port, a.path, headers, start=start,
                                                         connected=connected)))
                 for _ in range(a.count)]
        while len(connected) + sum(t.done() for t in tasks) < a.count and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)  # every connection accepted first, then all requests at once
        print(f"connected {len(connected)}", file=sys.stderr)
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), a.timeout)
    elif a.mode == "users":
        sem = asyncio.Semaphore(a.concurrency)

        async def user(i):
            async with sem:
                await guarded(one_request(a.host, a.port, a.path, headers + [("X-Callout-User-Id", str(i))]))
        await asyncio.wait_for(asyncio.gather(*(user(i) for i in range(a.count))), a.timeout)
    else:
        release = asyncio.Event()
        tasks = [asyncio.create_task(guarded(one_request(a.host, a.port, a.path, headers, keep_open=release)))
                 for _ in range(a.count)]
        await asyncio.sleep(a.hold_seconds)
        print("holding", file=sys.stderr, flush=True)
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), a.timeout)
    elapsed = time.monotonic() - started
    summary = " ".join(f"{k}={v}" for k, v in sorted(results.items(), key=lambda kv: str(kv[0])))
    print(f"{a.mode} n={a.count} elapsed_s={elapsed:.2f} {summary}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.TimeoutError:
        print("timed out", file=sys.stderr)
        sys.exit(2)
