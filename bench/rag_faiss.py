"""The Python side of bench/rag.mjs: faiss-cpu on the same vectors, the same figures, printed as JSON."""

import json
import os
import sys
import time

import faiss
import numpy as np

DIM, K, EF_SEARCH = 384, 10, (16, 64)


def latencies(index, queries):
    times, results = [], []
    for q in range(len(queries)):
        start = time.perf_counter()
        _, labels = index.search(queries[q : q + 1], K)
        times.append((time.perf_counter() - start) * 1000)
        results.append(labels[0].tolist())
    ordered = sorted(times)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
    return pick(50), pick(95), results


def main() -> None:
    folder, sizes, _ = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
    out = {}
    for size in sizes:
        data = np.fromfile(os.path.join(folder, f"data-{size}.f32"), dtype=np.float32).reshape(size, DIM)
        queries = np.fromfile(os.path.join(folder, f"queries-{size}.f32"), dtype=np.float32).reshape(-1, DIM)
        figures = {}
        start = time.perf_counter()
        flat = faiss.index_factory(DIM, "Flat", faiss.METRIC_INNER_PRODUCT)
        flat.add(data)
        figures["flat_build_s"] = time.perf_counter() - start
        latencies(flat, queries)
        p50, p95, exact = latencies(flat, queries)
        figures["flat_query_p50_ms"], figures["flat_query_p95_ms"] = p50, p95
        start = time.perf_counter()
        hnsw = faiss.index_factory(DIM, "HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
        hnsw.add(data)
        figures["hnsw_build_s"] = time.perf_counter() - start
        for ef in EF_SEARCH:
            hnsw.hnsw.efSearch = ef
            latencies(hnsw, queries)
            p50, p95, approximate = latencies(hnsw, queries)
            found = sum(len(set(a) & set(e)) for a, e in zip(approximate, exact))
            figures[f"hnsw_ef{ef}_query_p50_ms"], figures[f"hnsw_ef{ef}_query_p95_ms"] = p50, p95
            figures[f"hnsw_ef{ef}_recall_at_10"] = found / (len(exact) * K)
        out[size] = figures
    print(json.dumps({"version": faiss.__version__, "compile_options": faiss.get_compile_options(), "results": out}))


if __name__ == "__main__":
    main()
