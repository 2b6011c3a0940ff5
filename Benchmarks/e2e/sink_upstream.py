#!/usr/bin/env python3
"""HTTPS upstream that reads a whole request body (Content-Length or chunked), discards it and
answers 200 with the byte count. For the 1 GiB upload test of the end-to-end benchmark.
Usage: sink_upstream.py PORT CERT KEY  (binds 127.0.0.1 only; stops on SIGTERM)."""
import asyncio
import ssl
import sys


async def read_body(reader, headers):
    total = 0
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                return total
            while size:
                chunk = await reader.read(min(size, 1 << 20))
                if not chunk:
                    raise ConnectionError("eof in body")
                size -= len(chunk)
                total += len(chunk)
            await reader.readline()
    remaining = int(headers.get("content-length", "0"))
    while remaining:
        chunk = await reader.read(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("eof in body")
        remaining -= len(chunk)
        total += len(chunk)
    return total


async def serve(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            headers = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            total = await read_body(reader, headers)
            body = f"received {total}\n".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (ConnectionError, ValueError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=context, limit=1 << 20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
