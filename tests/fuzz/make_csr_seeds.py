#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_csr (tests/fuzz/corpus/fuzz_csr/), one file per case
of RELIABILITY.md rows 1-7 that applies to CSR or COO arrays. The byte layout is the one
documented at the top of fuzz_csr.cpp; run this again after changing it. Files named
regression_* are inputs the fuzzer found, kept by hand; this script leaves them alone."""
import pathlib

WIDE, FLOAT, COO = 1, 2, 4
# Codes of the extremes in fuzz_csr.cpp's `special` table.
NEG1, I32MAX, I32MAX_PLUS1, I64MAX, I64MIN, TWO40 = range(0xF0, 0xF6)
LAST_COL, ONE_PAST = 0x7F, -0x80  # column codes: cols - 1 and cols
INF, NAN = 0x7F, -0x80  # value codes
SAME = None  # as many values as columns


def seed(flags, rows, cols, first, columns, values=SAME):
    out = bytearray([flags, rows, cols, len(first)])
    out += bytes(v & 0xFF for v in first)
    out.append(len(columns))
    out += bytes(v & 0xFF for v in columns)
    if values is SAME:
        out.append(0xFF)
        out += bytes((3 * i + 1) & 0xFF for i in range(len(columns)))
    else:
        out.append(len(values))
        out += bytes(v & 0xFF for v in values)
    return bytes(out)


SEEDS = {
    # accepted
    "canonical": seed(0, 2, 3, [0, 2, 3], [0, 2, 1]),
    "canonical_wide": seed(WIDE, 2, 3, [0, 2, 3], [0, 2, 1]),
    "canonical_float": seed(FLOAT, 2, 3, [0, 2, 3], [0, 2, 1]),
    # row 1
    "row1_offsets_too_short": seed(0, 3, 3, [0, 1, 2], [0, 1]),
    "row1_offsets_too_long": seed(0, 1, 3, [0, 1, 2], [0, 1]),
    "row1_fewer_values": seed(0, 1, 3, [0, 3], [0, 1, 2], [1, 2]),
    "row1_more_values": seed(0, 1, 3, [0, 1], [0], [1, 2]),
    "row1_coo_lengths": seed(COO, 2, 2, [0, 1, 1], [0, 1]),
    # row 2
    "row2_first_offset": seed(0, 2, 3, [1, 2, 3], [0, 1, 2]),
    "row2_last_offset_short": seed(0, 2, 3, [0, 1, 2], [0, 1, 2]),
    "row2_last_offset_long": seed(0, 2, 3, [0, 1, 4], [0, 1, 2]),
    "row2_decreasing": seed(0, 3, 3, [0, 2, 1, 3], [0, 1, 2]),
    "row2_negative": seed(0, 2, 3, [0, -1, 2], [0, 1]),
    "row2_negative_first": seed(0, 1, 3, [-128, 0], []),
    # row 3
    "row3_negative_column": seed(0, 1, 3, [0, 2], [0, -1]),
    "row3_column_equals_cols": seed(0, 1, 3, [0, 1], [ONE_PAST]),
    "row3_one_based": seed(0, 2, 3, [0, 2, 3], [1, 3, 2]),
    "row3_coo_row_outside": seed(COO, 2, 2, [0, 2], [0, 1]),
    "row3_coo_negative": seed(COO, 2, 2, [-1, 0], [0, 1]),
    "row3_wide_column_past_2_31": seed(WIDE, 1, I32MAX_PLUS1, [0, 1], [ONE_PAST]),
    # row 4
    "row4_unsorted": seed(0, 2, 4, [0, 3, 4], [3, 0, 2, 1]),
    "row4_duplicates": seed(0, 1, 4, [0, 4], [2, 2, 0, 2]),
    "row4_coo_unsorted_duplicates": seed(COO, 3, 3, [2, 0, 2, 1, 0], [1, 2, 1, 0, 2]),
    # row 5
    "row5_rows_past_int32": seed(0, I32MAX_PLUS1, 3, [0, 0], []),
    "row5_cols_past_int32": seed(0, 1, I32MAX_PLUS1, [0, 1], [0]),
    "row5_cols_int32_max": seed(0, 1, I32MAX, [0, 1], [LAST_COL]),
    "row5_rows_int64_max": seed(WIDE, I64MAX, 1, [0], []),
    "row5_wide_cols_2_40": seed(WIDE, 1, TWO40, [0, 2], [LAST_COL, 0]),
    "row5_wide_cols_2_31": seed(WIDE, 2, I32MAX_PLUS1, [0, 1, 2], [LAST_COL, 5]),
    "row5_coo_wide_cols": seed(COO | WIDE, 2, I32MAX_PLUS1, [1, 0], [LAST_COL, LAST_COL]),
    "row5_coo_cols_past_int32": seed(COO, 1, I32MAX_PLUS1, [0], [0]),
    "negative_rows": seed(0, NEG1, 3, [0], []),
    "negative_cols": seed(COO, 2, NEG1, [], []),
    "most_negative_rows": seed(WIDE, I64MIN, 0, [0], []),
    # row 6
    "row6_zero_by_zero": seed(0, 0, 0, [0], []),
    "row6_zero_rows": seed(0, 0, 5, [0], []),
    "row6_zero_cols": seed(0, 3, 0, [0, 0, 0, 0], []),
    "row6_empty_rows": seed(0, 4, 2, [0, 0, 1, 1, 1], [1]),
    "row6_coo_empty": seed(COO, 3, 3, [], []),
    # row 7
    "row7_nan_inf": seed(0, 1, 3, [0, 3], [0, 1, 1], [NAN, INF, 2]),
    "row7_coo_nan_duplicate": seed(COO | FLOAT, 1, 1, [0, 0], [0, 0], [NAN, 1]),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "fuzz_csr"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)
