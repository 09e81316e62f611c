#!/usr/bin/python3
"""Writes the scikit-learn reference data that tests/algorithms/test_tfidf.cpp checks.

Run with Debian's Python (scikit-learn 1.2.1, Python 3.11 / Unicode 14.0):
    /usr/bin/python3 tests/data/tfidf/make_fixtures.py
Outputs, next to this script:
    expected.json        corpus, extra transform documents, and for each option set
                         sklearn's vocabulary_, idf_ and CSR output (float64)
    unicode_word.txt     ranges "first last" (hex) of code points matching re's \\w
    unicode_unassigned.txt  ranges of code points unassigned (Cn) in Python's Unicode
    unicode_lower.txt    "cp: lowered cps" (hex) for every cp where str.lower() changes it
"""
import json
import os
import re
import sys
import unicodedata

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer

HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "a b c d e f",
    "!!! ... ??? --- ;;; ,,,",
    "The dog barks; the FOX runs. Dog, dog, DOG!",
    "Numbers 42 and 3.14 and 2024-01-01 and x1 y2 z_3 __init__ snake_case_name",
    "Line one\r\nLine two\r\n\tTabbed\tline three",
    "Café café CAFÉ cafe\u0301 Cafe\u0301 naïve nai\u0308ve résumé",
    "ΟΔΟΣ οδός ΣΑΣ Σ σοφός ΑΣ. ΑΣ'Β ΟΔΟΣ\u0384 αΣα ΜΙΣΟΣ",
    "İstanbul İSTANBUL istanbul ıi DİYARBAKIR",
    "Straße STRASSE strasse Fuß FUSS groß",
    "东京 北京市 日本語のテキスト 中文 字",
    "emoji 😀😀 fun 🎉party🎉 👍🏽ok",
    "Москва МОСКВА москва Привет мир",
    "مرحبا بالعالم العربية اللغة",
    "MiXeD CaSe mixed case MIXED CASE",
    "x",
    "   \t\r\n  ",
    "dog dog dog dog cat",
    "The fox and the dog are friends",
    "quick quick brown brown fox",
    "under_score _leading trailing_ _ __ ___",
    "apostrophe's don't it's O'Neil",
    "ǅungla ǈubav Ǌ ǋ ǆ",
    "Ⅻ ⅻ ½ ² ³ ١٢٣ ४२",
    "hello\u00a0world\u2003wide\u3000space",
    "a\u200bb zero\u200bwidth",
    "ﬁle ﬂow ＡＢＣ ａｂｃ",
]

TRANSFORM_DOCS = [
    "The unknown zebra meets the quick dog",
    "",
    "completely novel words only",
    "café ΟΔΟΣ москва dog dog",
]

CASES = [
    ("default", {}),
    ("sublinear_tf", {"sublinear_tf": True}),
    ("binary_no_norm", {"binary": True, "norm": None}),
    ("no_idf", {"use_idf": False}),
    ("no_smooth_idf", {"smooth_idf": False}),
    ("min_df_2_max_df_half", {"min_df": 2, "max_df": 0.5}),
    ("max_features_11", {"max_features": 11}),  # no tie at the cut-off
    ("ngram_1_2", {"ngram_range": (1, 2)}),
    ("norm_l1", {"norm": "l1"}),
    ("no_lowercase", {"lowercase": False}),
    ("ngram_2_3_min_df_proportion", {"ngram_range": (2, 3), "min_df": 0.05}),
    ("binary_max_features_3", {"binary": True, "max_features": 3}),
]


def csr_json(x):
    x = x.tocsr()
    x.sort_indices()
    return {
        "shape": list(x.shape),
        "indptr": x.indptr.tolist(),
        "indices": x.indices.tolist(),
        "data": [float(v) for v in x.data],
    }


def check_max_features_ties(vec, options, corpus):
    """Our tie rule (smaller index first) must pick the same terms as sklearn here."""
    if "max_features" not in options:
        return
    full = TfidfVectorizer(**{k: v for k, v in options.items() if k != "max_features"})
    counts = full.fit(corpus)
    from sklearn.feature_extraction.text import CountVectorizer
    cv_opts = {k: v for k, v in options.items() if k in ("binary", "ngram_range", "lowercase")}
    cv = CountVectorizer(**cv_opts)
    x = cv.fit_transform(corpus)
    totals = np.asarray(x.sum(axis=0)).ravel()
    names = cv.get_feature_names_out()
    order = sorted(range(len(names)), key=lambda i: (-totals[i], names[i]))
    ours = sorted(names[i] for i in order[: options["max_features"]])
    assert ours == sorted(vec.vocabulary_), (ours, sorted(vec.vocabulary_))
    del counts


def main():
    cases = []
    for name, options in CASES:
        vec = TfidfVectorizer(**options)
        x = vec.fit_transform(CORPUS)
        check_max_features_ties(vec, options, CORPUS)
        vocabulary = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
        assert vocabulary == sorted(vocabulary)
        opts = dict(options)
        if "ngram_range" in opts:
            opts["ngram_range"] = list(opts["ngram_range"])
        if "norm" in opts and opts["norm"] is None:
            opts["norm"] = "none"
        cases.append(
            {
                "name": name,
                "options": opts,
                "vocabulary": vocabulary,
                "idf": [float(v) for v in vec.idf_] if vec.use_idf else [],
                "fit_transform": csr_json(x),
                "transform": csr_json(vec.transform(TRANSFORM_DOCS)),
            }
        )
    out = {
        "generator": "scikit-learn %s, Python %s, Unicode %s"
        % (sklearn.__version__, sys.version.split()[0], unicodedata.unidata_version),
        "corpus": CORPUS,
        "transform_documents": TRANSFORM_DOCS,
        "cases": cases,
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")

    word = re.compile(r"\w")
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]

    def write_ranges(path, members):
        ranges = []
        for cp in members:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
        with open(os.path.join(HERE, path), "w") as f:
            for a, b in ranges:
                f.write("%x %x\n" % (a, b))

    write_ranges("unicode_word.txt", [cp for cp in code_points if word.match(chr(cp))])
    write_ranges(
        "unicode_unassigned.txt",
        [cp for cp in code_points if unicodedata.category(chr(cp)) == "Cn"],
    )
    with open(os.path.join(HERE, "unicode_lower.txt"), "w") as f:
        for cp in code_points:
            lowered = chr(cp).lower()
            if lowered != chr(cp):
                f.write("%x: %s\n" % (cp, " ".join("%x" % ord(c) for c in lowered)))


if __name__ == "__main__":
    main()
