#!/usr/bin/python3
"""All-pairs cosine top-k with SciPy (the peer), and a checker for mgpu's neighbours.

The peer is the usual SciPy / scikit-learn recipe: L2-normalise the rows of X (zero rows
stay zero), then for each block of --block-rows rows compute X[block] @ X.T as a sparse
product, densify it, drop the self match (unless --include-self), pick the top k with
np.argpartition and sort them by (-score, column). Ties at the k-th place go to the
smaller column, as in mgpu. Pairs scoring exactly 0 are not neighbours and are not
listed. Only the product and the selection are timed.

    /usr/bin/python3 benchmarks/cosine_reference.py --tfidf X.mtx --k 10 \\
        [--corpus C.ndjson | --ids ids.txt] [--check neighbors.tsv] [--output ref.tsv]

Document ids: row i of X.mtx is the i-th document of --corpus (NDJSON; blank lines hold
no document; the id is the "id" member, a string or an integer, or else the 1-based
line number, as mgpu's corpus reader does), or the i-th line of --ids, or else the
0-based row number.

--check reads mgpu's TSV (query_id, neighbor_id, score; best first) and, for every
query, requires
  - as many neighbours as the reference lists;
  - scores equal to the reference's, rank by rank, within --score-tolerance (1e-5);
  - each listed score equal to the reference score of that very pair (1e-5);
  - the same neighbour set, except among pairs whose reference score ties with the
    k-th score within --tie-tolerance (1e-6);
  - no duplicate neighbour, no self match unless --include-self.
With --max-queries N only the first N queries are checked.
It prints the number of queries checked and of mismatches, and exits 1 on any mismatch.

Needs python3-numpy and python3-scipy (Debian): run with /usr/bin/python3.
"""

import argparse
import json
import sys
import time
from collections import defaultdict


def read_corpus_ids(path: str) -> list[str]:
    ids = []
    with open(path, encoding="utf-8") as corpus:
        for line_number, line in enumerate(corpus, start=1):
            if not line.strip():
                continue
            value = json.loads(line).get("id", line_number)
            ids.append(value if isinstance(value, str) else str(value))
    return ids


def read_id_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as lines:
        return [line.rstrip("\r\n") for line in lines]


def normalize_rows(x):
    import numpy as np
    import scipy.sparse as sp

    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (sp.diags(scale.astype(x.dtype)) @ x).tocsr()


def top_k_block(scores, k: int):
    """Column indices and scores of each row's top k, by (-score, column); ties go to
    the smaller column. Entries that are not neighbours (0 or -inf) are kept here and
    dropped when listed."""
    import numpy as np

    rows, cols = scores.shape
    if k >= cols:
        chosen = np.broadcast_to(np.arange(cols), (rows, cols)).copy()
    else:
        chosen = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, chosen, axis=1).min(axis=1)
        # argpartition breaks ties arbitrarily; redo the rows whose k-th score is shared
        # by more columns than fit, taking the smallest tied columns.
        crowded = np.flatnonzero(((scores >= kth[:, None]).sum(axis=1) > k) & (kth != 0))
        for r in crowded:
            above = np.flatnonzero(scores[r] > kth[r])
            tied = np.flatnonzero(scores[r] == kth[r])[: k - above.size]
            chosen[r] = np.concatenate([above, tied])
    chosen_scores = np.take_along_axis(scores, chosen, axis=1)
    order = np.lexsort((chosen, -chosen_scores), axis=1)
    return (np.take_along_axis(chosen, order, axis=1),
            np.take_along_axis(chosen_scores, order, axis=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfidf", required=True, help="documents x terms matrix (Matrix Market)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--include-self", action="store_true",
                        help="let a document be its own neighbour")
    parser.add_argument("--block-rows", type=int, default=2000)
    parser.add_argument("--max-queries", type=int,
                        help="only the first N rows are queries (all rows stay candidates); "
                             "to time a sample when the full run takes too long")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="arithmetic of the product (default: float32, as mgpu)")
    ids_from = parser.add_mutually_exclusive_group()
    ids_from.add_argument("--corpus", help="NDJSON corpus whose ids name the rows, in order")
    ids_from.add_argument("--ids", help="file with one id per line, one line per row")
    parser.add_argument("--check", help="mgpu's neighbours TSV to compare with the reference")
    parser.add_argument("--output", help="write the reference neighbours as TSV here")
    parser.add_argument("--score-tolerance", type=float, default=1e-5)
    parser.add_argument("--tie-tolerance", type=float, default=1e-6)
    parser.add_argument("--show", type=int, default=5, help="mismatching queries to describe")
    args = parser.parse_args()
    if args.k <= 0:
        parser.error("--k must be positive")

    import numpy as np
    import scipy.io

    start = time.perf_counter()
    x = normalize_rows(scipy.io.mmread(args.tfidf).tocsr().astype(np.dtype(args.dtype)))
    n = x.shape[0]
    print(f"loaded {args.tfidf}: {n} x {x.shape[1]}, nnz {x.nnz} "
          f"({time.perf_counter() - start:.1f} s)")
    if args.corpus:
        ids = read_corpus_ids(args.corpus)
    elif args.ids:
        ids = read_id_lines(args.ids)
    else:
        ids = [str(i) for i in range(n)]
    if len(ids) != n:
        print(f"error: {len(ids)} ids for {n} rows", file=sys.stderr)
        return 2
    if args.check and len(set(ids)) != n:
        print("error: ids are not unique, so neighbours cannot be matched", file=sys.stderr)
        return 2

    expected = read_tsv(args.check, ids) if args.check else None
    output = open(args.output, "w", encoding="utf-8", newline="\n") if args.output else None
    xt = x.T.tocsr()
    seconds = 0.0
    checked = mismatched = 0
    queries = n if args.max_queries is None else max(0, min(n, args.max_queries))
    for first in range(0, queries, args.block_rows):
        last = min(queries, first + args.block_rows)
        tick = time.perf_counter()
        scores = (x[first:last] @ xt).toarray()
        if not args.include_self:
            scores[np.arange(last - first), np.arange(first, last)] = -np.inf
        columns, best = top_k_block(scores, args.k)
        seconds += time.perf_counter() - tick
        if sys.stderr.isatty():
            print(f"\r{last}/{queries} queries", end="", file=sys.stderr, flush=True)
        for r in range(last - first):
            keep = (best[r] != 0) & np.isfinite(best[r])
            reference = list(zip(columns[r][keep].tolist(), best[r][keep].tolist()))
            query = first + r
            if output:
                for column, score in reference:
                    output.write(f"{ids[query]}\t{ids[column]}\t{score:.9g}\n")
            if expected is not None:
                problem = compare_query(query, reference, expected.get(query, []), scores[r],
                                        args)
                checked += 1
                if problem:
                    mismatched += 1
                    if mismatched <= args.show:
                        print(f"MISMATCH query {ids[query]!r}: {problem}")
    if output:
        output.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"reference cosine top-{args.k}: {queries} queries x {n} documents in {seconds:.2f} s "
          f"({queries / max(seconds, 1e-9):.0f} queries/s, {args.dtype}, "
          f"blocks of {args.block_rows} rows)")
    if expected is None:
        return 0
    print(f"checked {checked} queries: {mismatched} mismatches")
    print("PASS: mgpu neighbours match the reference" if mismatched == 0 else
          "FAIL: mgpu neighbours differ from the reference")
    return 0 if mismatched == 0 else 1


def read_tsv(path: str, ids: list[str]) -> dict:
    """mgpu's TSV as {query row: [(neighbour row, score), ...]}; unknown ids map to -1."""
    row_of = {doc_id: i for i, doc_id in enumerate(ids)}
    neighbours = defaultdict(list)
    with open(path, encoding="utf-8") as tsv:
        for line_number, line in enumerate(tsv, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise SystemExit(f"{path}:{line_number}: expected 3 tab-separated fields")
            query, neighbour, score = fields
            if query not in row_of:
                raise SystemExit(f"{path}:{line_number}: unknown query id {query!r}")
            neighbours[row_of[query]].append((row_of.get(neighbour, -1), float(score)))
    return neighbours


def compare_query(query: int, reference: list, mine: list, scores, args) -> str:
    """Why mgpu's list for one query disagrees with the reference, or '' if it agrees."""
    if len(mine) != len(reference):
        return f"{len(mine)} neighbours listed, reference has {len(reference)}"
    columns = [c for c, _ in mine]
    if -1 in columns:
        return "a neighbour id that is not in the corpus"
    if len(set(columns)) != len(columns):
        return "a neighbour listed twice"
    if not args.include_self and query in columns:
        return "the query is listed as its own neighbour"
    for rank, ((_, mine_score), (_, ref_score)) in enumerate(zip(mine, reference)):
        if abs(mine_score - ref_score) > args.score_tolerance:
            return f"rank {rank}: score {mine_score:.9g}, reference {ref_score:.9g}"
    for column, mine_score in mine:
        if abs(mine_score - float(scores[column])) > args.score_tolerance:
            return (f"pair with row {column}: score {mine_score:.9g}, "
                    f"reference {float(scores[column]):.9g}")
    if reference:
        kth = reference[-1][1]
        for column in set(columns) ^ {c for c, _ in reference}:
            if abs(float(scores[column]) - kth) > args.tie_tolerance:
                return (f"row {column} (reference score {float(scores[column]):.9g}) is in one "
                        f"list only and does not tie with the k-th score {kth:.9g}")
    return ""


if __name__ == "__main__":
    sys.exit(main())
