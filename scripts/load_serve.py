#!/usr/bin/env python3
"""Load on a running `cargo xtask serve`: concurrent searches, with a 100 MB upload and a
non-image upload sent in the middle of them.

    cargo xtask serve --index fm.index &
    python3 scripts/load_serve.py --addr 127.0.0.1:8080 --queries fmnist/test --n 200

Half the searches are by an indexed id (`GET /api/images/<id>/similar`), half by uploading an
image file from `--queries` (`POST /api/search`, embedded by the server). All start together
(one thread each, released by a barrier); the oversized and non-image uploads start with
them. Prints each kind's status codes, the latency p50/p99 of the searches, the wall time of
the whole round, and exits non-zero when a search failed or a bad upload was not refused
with a 4xx. Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time

K = 10


def request(addr, method, path, body=None, content_type=None, timeout=120):
    """Status, body and seconds of one request on its own connection. A server may answer
    (413) and close before it has read a whole body: the answer is read even when sending
    the rest of the body fails, as browsers and curl do."""
    host, port = addr.rsplit(":", 1)
    body = body or b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    start = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(head.encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            data = response.read()
        except (ConnectionError, http.client.HTTPException) as e:
            return f"no answer: {e.__class__.__name__}", b"", time.perf_counter() - start
        return response.status, data, time.perf_counter() - start


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", default="127.0.0.1:8080")
    parser.add_argument("--queries", required=True, help="folder of query images to upload")
    parser.add_argument("--n", type=int, default=200, help="concurrent searches")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the oversized upload")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    status, body, _ = request(args.addr, "GET", "/api/info")
    if status != 200:
        sys.exit(f"{args.addr}: /api/info answered {status}")
    info = json.loads(body)
    count = info["count"]
    files = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(args.queries)
        for name in names
        if name.lower().endswith((".png", ".jpg", ".jpeg"))
    )
    if not files:
        sys.exit(f"{args.queries}: no PNG or JPEG images")
    # Indexed ids to search by: the results of one upload (ids are the index's own).
    first = open(files[0], "rb").read()
    status, body, _ = request(args.addr, "POST", f"/api/search?k={min(count, info['max_k'])}",
                              first, "image/png" if files[0].endswith(".png") else "image/jpeg")
    if status != 200:
        sys.exit(f"{files[0]}: the first search answered {status}: {body[:200]!r}")
    ids = [r["id"] for r in json.loads(body)["results"]]

    jobs = []
    for i in range(args.n):
        if i % 2 == 0:
            target = rng.choice(ids)
            jobs.append(("by id", "GET", f"/api/images/{target}/similar?k={K}", None, None))
        else:
            path = rng.choice(files)
            content_type = "image/png" if path.lower().endswith(".png") else "image/jpeg"
            data = open(path, "rb").read()
            jobs.append(("by upload", "POST", f"/api/search?k={K}", data, content_type))
    big = os.urandom(args.big_mb * 1_000_000)
    jobs.append(("100 MB upload", "POST", f"/api/search?k={K}", big, "image/png"))
    jobs.append(("non-image upload", "POST", f"/api/search?k={K}",
                 b"these are not the pixels you are looking for\n" * 100, "text/plain"))

    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs) + 1)

    def run(i):
        kind, method, path, body, content_type = jobs[i]
        barrier.wait()
        results[i] = (kind, *request(args.addr, method, path, body, content_type))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start

    summary = {"address": args.addr, "images": count, "search": info.get("search"),
               "concurrent": args.n, "wall_s": round(wall, 3), "kinds": {}}
    failed = []
    for kind in ["by id", "by upload", "100 MB upload", "non-image upload"]:
        mine = [r for r in results if r[0] == kind]
        codes = {}
        for _, status, body, _ in mine:
            codes[str(status)] = codes.get(str(status), 0) + 1
        latencies = [r[3] * 1000 for r in mine]
        entry = {"requests": len(mine), "status": codes,
                 "p50_ms": round(statistics.median(latencies), 1),
                 "p99_ms": round(percentile(latencies, 0.99), 1)}
        if kind in ("by id", "by upload"):
            good = [r for r in mine if r[1] == 200
                    and len(json.loads(r[2])["results"]) == min(K, count - 1)]
            if len(good) != len(mine):
                failed.append(f"{kind}: {len(mine) - len(good)} of {len(mine)} failed: {codes}")
        else:
            _, status, body, _ = mine[0]
            entry["message"] = body.decode("utf-8", "replace")[:200]
            if not (isinstance(status, int) and 400 <= status < 500):
                failed.append(f"{kind}: answered {status}, not a 4xx")
        summary["kinds"][kind] = entry
    searches = [r[3] * 1000 for r in results if r[0] in ("by id", "by upload")]
    summary["searches_p50_ms"] = round(statistics.median(searches), 1)
    summary["searches_p99_ms"] = round(percentile(searches, 0.99), 1)
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if failed:
        sys.exit("\n".join(failed))


if __name__ == "__main__":
    main()
