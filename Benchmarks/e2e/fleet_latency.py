#!/usr/bin/env python3
"""Latency a token store hit adds, through real replicas (standard library only).

For each of N users (each its own token: scope per user): replica A fetches the token (identity
provider, then store); replica B's first callout for the user reads it from the store (a store
hit); B's second callout finds it in its own cache (a local hit). Prints the median and p90 of
the B callouts of each kind, on kept-alive connections so connecting is not counted.
"""
import argparse
import http.client
import statistics
import sys
import time


def call(conn, user, path):
    conn.request("GET", path, headers={"X-Callout-Permission-Sets": "Bench", "X-Callout-User-Id": user})
    response = conn.getresponse()
    response.read()
    return response.status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", type=int, required=True)
    p.add_argument("--b", type=int, required=True)
    p.add_argument("-n", "--users", type=int, default=300)
    p.add_argument("--path", default="/callout:Users/")
    args = p.parse_args()
    a = http.client.HTTPConnection("127.0.0.1", args.a, timeout=30)
    b = http.client.HTTPConnection("127.0.0.1", args.b, timeout=30)
    store_hits, local_hits, failures = [], [], 0
    for i in range(args.users):
        user = f"fleet-{i}"
        if call(a, user, args.path) != 200:
            failures += 1
            continue
        start = time.perf_counter()
        status = call(b, user, args.path)
        store_hits.append(time.perf_counter() - start)
        start = time.perf_counter()
        status2 = call(b, user, args.path)
        local_hits.append(time.perf_counter() - start)
        if status != 200 or status2 != 200:
            failures += 1

    def q(values, share):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * share))] * 1000

    print(
        f"users={args.users} failures={failures} "
        f"store_hit_p50_ms={q(store_hits, 0.5):.2f} store_hit_p90_ms={q(store_hits, 0.9):.2f} "
        f"local_hit_p50_ms={q(local_hits, 0.5):.2f} local_hit_p90_ms={q(local_hits, 0.9):.2f} "
        f"added_p50_ms={statistics.median(store_hits) * 1000 - statistics.median(local_hits) * 1000:.2f}"
    )
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
