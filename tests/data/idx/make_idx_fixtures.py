#!/usr/bin/env python3
"""Writes the IDX reader's test fixtures (tests/data/idx/*) with Python's struct and gzip
modules, independently of mgpu. Run from anywhere: python3 make_idx_fixtures.py"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def idx(type_byte, dims, payload):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def write_gz(name, data):
    # mtime=0: reproducible bytes.
    write(name, gzip.compress(data, mtime=0))


# A 2 x 2 x 3 "image" file of unsigned bytes, plain and compressed: values 0, 1, ..., 10, 255.
u8 = bytes(list(range(11)) + [255])
write("u8_2x2x3.idx", idx(0x08, [2, 2, 3], u8))
write_gz("u8_2x2x3.idx.gz", idx(0x08, [2, 2, 3], u8))
# Labels: a 1-D unsigned byte file.
write_gz("labels_5.idx1.gz", idx(0x08, [5], bytes([3, 1, 4, 1, 5])))
# Every other element type, 1 x 3, big-endian.
write("s8_1x3.idx", idx(0x09, [1, 3], struct.pack(">3b", -128, 0, 127)))
write("i16_1x3.idx", idx(0x0B, [1, 3], struct.pack(">3h", -32768, 2, 32767)))
write("i32_1x3.idx", idx(0x0C, [1, 3], struct.pack(">3i", -2147483648, 3, 2147483647)))
write("f32_1x3.idx", idx(0x0D, [1, 3], struct.pack(">3f", -1.5, 0.25, 3.0e38)))
write("f64_1x3.idx", idx(0x0E, [1, 3], struct.pack(">3d", -1.5, 0.1, 1.0e300)))
# Zero rows: valid, an empty 0 x 4 matrix.
write("u8_0x2x2.idx", idx(0x08, [0, 2, 2], b""))

# Malformed files.
write("empty.idx", b"")
write("short_magic.idx", b"\x00\x00\x08")
write("bad_magic.idx", b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
write("bad_type.idx", idx(0x07, [1], b"\x00"))
write("zero_dims.idx", bytes([0, 0, 0x08, 0]))
write("truncated_dims.idx", bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2) + b"\x00\x00")
write("truncated_data.idx", idx(0x08, [2, 2, 3], u8[:7]))
write_gz("truncated_data.idx.gz", idx(0x08, [2, 2, 3], u8[:7]))
# The sizes do not describe the data: 12 bytes announced, 13 present.
write("trailing_data.idx", idx(0x08, [2, 2, 3], u8 + b"\x07"))
# Huge claims with almost no data (8.6 PB announced): must fail without allocating it.
write("huge_claim.idx", idx(0x0D, [2147483647, 1000000], b"\x00" * 16))
write("overflow_dims.idx", idx(0x0E, [2147483647] * 4, b""))
write("negative_dim.idx", idx(0x08, [1, 0x80000000], b""))
# Corrupt gzip: a damaged deflate stream, a CRC mismatch, a stream cut short.
good = gzip.compress(idx(0x08, [64], bytes(range(64)) ), mtime=0)
bad_crc = bytearray(good)
bad_crc[-8] ^= 0xFF  # first byte of the CRC32 trailer
write("bad_crc.idx.gz", bytes(bad_crc))
write("cut.idx.gz", good[: len(good) // 2])
corrupt = bytearray(good)
corrupt[10] = 0xFF  # first byte of the deflate data: invalid block type
write("corrupt.idx.gz", bytes(corrupt))
