#!/usr/bin/env python3
"""faiss-cpu beside repr-search's own search, on the same vectors (`cargo xtask bench search`).

Reads unit vectors from `base.npy` ([n, dim] float32) and `queries.npy` ([q, dim]) in the
folder given, builds `IndexFlatIP` (exact) and `IndexHNSWFlat` (inner product, M and
efConstruction as given), and measures what the Rust side measures: build time, resident
memory added (/proc/self/statm), write + read time of a saved index, single-query latency
(p50, p99, one query per call), the time of one batch of queries, and the top-k ids of every
query (for recall against repr-search's exact search). Prints one JSON object; ids go to
`<folder>/faiss-<name>-ids.npy` (int64 [q, k]).

    python3 scripts/faiss_search.py DIR --k 10 --m 16 --ef-construction 128 \
        --ef-search 64,128 --batch 256
"""

import argparse
import json
import os
import sys
import tempfile
import time


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)]


def measure(faiss, np, index, queries, k, batch, folder, name):
    """Latencies, batch time and ids of `index` on `queries`; also its save and load time."""
    latencies = []
    ids = np.empty((len(queries), k), dtype=np.int64)
    for i in range(len(queries)):
        q = queries[i : i + 1]
        start = time.perf_counter()
        _, found = index.search(q, k)
        latencies.append(time.perf_counter() - start)
        ids[i] = found[0]
    latencies.sort()
    batch_runs = []
    for _ in range(5):
        start = time.perf_counter()
        index.search(queries[:batch], k)
        batch_runs.append(time.perf_counter() - start)
    batch_runs.sort()
    path = os.path.join(folder, f"faiss-{name}.index")
    start = time.perf_counter()
    faiss.write_index(index, path)
    saved = time.perf_counter() - start
    start = time.perf_counter()
    faiss.read_index(path)
    loaded = time.perf_counter() - start
    os.remove(path)
    np.save(os.path.join(folder, f"faiss-{name}-ids.npy"), ids)
    return {
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "batch": min(batch, len(queries)),
        "batch_ms": batch_runs[len(batch_runs) // 2] * 1e3,
        "save_s": saved,
        "load_s": loaded,
        "ids": f"faiss-{name}-ids.npy",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ef-search", default="128")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    try:
        import faiss
        import numpy as np
    except ImportError as e:
        print(json.dumps({"available": False, "reason": f"cannot import faiss: {e}"}))
        return 0
    base = np.ascontiguousarray(np.load(os.path.join(args.folder, "base.npy")), dtype=np.float32)
    queries = np.ascontiguousarray(
        np.load(os.path.join(args.folder, "queries.npy")), dtype=np.float32
    )
    n, dim = base.shape
    out = {
        "available": True,
        "faiss": faiss.__version__,
        "threads": faiss.omp_get_max_threads(),
        "n": n,
        "dim": dim,
        "rows": [],
    }

    before = rss_bytes()
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    build = time.perf_counter() - start
    row = {"name": "IndexFlatIP", "params": "", "build_s": build,
           "rss_mib": (rss_bytes() - before) / 2**20}
    row.update(measure(faiss, np, flat, queries, args.k, args.batch, args.folder, "flat"))
    out["rows"].append(row)
    del flat

    before = rss_bytes()
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, args.m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    hnsw.add(base)
    build = time.perf_counter() - start
    rss = (rss_bytes() - before) / 2**20
    for ef in [int(e) for e in args.ef_search.split(",")]:
        hnsw.hnsw.efSearch = ef
        row = {"name": "IndexHNSWFlat",
               "params": f"M={args.m} efConstruction={args.ef_construction} efSearch={ef}",
               "ef_search": ef, "build_s": build, "rss_mib": rss}
        row.update(measure(faiss, np, hnsw, queries, args.k, args.batch, args.folder,
                           f"hnsw-ef{ef}"))
        out["rows"].append(row)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
