#!/usr/bin/python3
"""Writes the expected PageRank of graph.mtx for tests/programs/pagerank_check.sh.

networkx's own power iteration (networkx.algorithms.link_analysis.pagerank_alg.
_pagerank_python, the pure-Python body of networkx.pagerank: uniform personalization,
dangling nodes spread uniformly, weight=None so every edge counts once) run for exactly
ITERATIONS iterations: one iteration per call, each call started from the previous
result (tol=inf makes it return after its first iteration instead of testing
convergence). Node i of the graph is the 0-based row index (Matrix Market index - 1).

Usage: make_expected.py DAMPING ITERATIONS > expected_D_K.tsv   (needs python3-networkx)
"""
import sys

import networkx as nx
from networkx.algorithms.link_analysis.pagerank_alg import _pagerank_python


def read_graph(path):
    g = nx.DiGraph()
    with open(path) as f:
        lines = [l for l in f if not l.startswith("%")]
    n = int(lines[0].split()[0])
    g.add_nodes_from(range(n))
    for line in lines[1:]:
        i, j = line.split()[:2]
        g.add_edge(int(i) - 1, int(j) - 1)
    return g


def main():
    damping, iterations = float(sys.argv[1]), int(sys.argv[2])
    g = read_graph(__file__.rsplit("/", 1)[0] + "/graph.mtx" if "/" in __file__ else "graph.mtx")
    x = None
    for _ in range(iterations):
        x = _pagerank_python(g, alpha=damping, max_iter=1, tol=float("inf"), nstart=x, weight=None)
    sys.stdout.write(f"# networkx {nx.__version__}, damping {damping}, {iterations} iterations\n")
    for node in sorted(x):
        sys.stdout.write(f"{node}\t{x[node]:.17g}\n")


if __name__ == "__main__":
    main()
