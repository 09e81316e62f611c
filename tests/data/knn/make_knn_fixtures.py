#!/usr/bin/env python3
"""Writes the k-NN test fixtures (tests/data/knn/*) from Debian's dataset-fashion-mnist:

  fashion-train-300-images.idx3-ubyte.gz   the first 300 training images (IDX, gzip)
  fashion-train-300-labels.idx1-ubyte.gz   their labels
  fashion-test-20-images.idx3-ubyte.gz     the first 20 test images
  expected_<metric>.tsv                    query, rank, train index, value: the exact
                                           k = 10 neighbours by numpy in float64, ties
                                           toward the smaller index (l2: squared distance
                                           ascending; ip, cosine: similarity descending)
  expected_vote.tsv                        query, majority label of those l2 neighbours
                                           (ties toward the smaller label)

The reference is independent of mgpu: numpy float64 arithmetic and a stable sort.
Run: /usr/bin/python3 make_knn_fixtures.py [--data-dir /usr/share/datasets/fashion-mnist]"""
import argparse
import gzip
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
K = 10


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def write_idx(name, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


def ranked(values, ascending):
    # lexsort: last key is primary; the index breaks ties toward the smaller one.
    idx = np.arange(values.shape[1])
    out = []
    for row in values:
        key = row if ascending else -row
        order = np.lexsort((idx, key))[:K]
        out.append([(int(j), float(row[j])) for j in order])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    train = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"))[:300]
    labels = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz"))[:300]
    test = read_idx(os.path.join(args.data_dir, "t10k-images-idx3-ubyte.gz"))[:20]
    write_idx("fashion-train-300-images.idx3-ubyte.gz", train)
    write_idx("fashion-train-300-labels.idx1-ubyte.gz", labels)
    write_idx("fashion-test-20-images.idx3-ubyte.gz", test)

    b = train.reshape(len(train), -1).astype(np.float64)
    q = test.reshape(len(test), -1).astype(np.float64)
    diff = q[:, None, :] - b[None, :, :]
    l2 = np.einsum("qnd,qnd->qn", diff, diff)
    ip = q @ b.T
    bn = np.linalg.norm(b, axis=1)
    qn = np.linalg.norm(q, axis=1)
    cos = ip / np.outer(np.where(qn > 0, qn, 1), np.where(bn > 0, bn, 1))
    results = {"l2": ranked(l2, True), "ip": ranked(ip, False), "cosine": ranked(cos, False)}
    for metric, rows in results.items():
        with open(os.path.join(HERE, f"expected_{metric}.tsv"), "w") as f:
            for qi, row in enumerate(rows):
                for rank, (j, v) in enumerate(row):
                    f.write(f"{qi}\t{rank}\t{j}\t{v!r}\n")
    with open(os.path.join(HERE, "expected_vote.tsv"), "w") as f:
        for qi, row in enumerate(results["l2"]):
            votes = np.bincount([labels[j] for j, _ in row], minlength=10)
            f.write(f"{qi}\t{int(np.argmax(votes))}\n")  # argmax: first (smallest) of the ties


if __name__ == "__main__":
    main()
