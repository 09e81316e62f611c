#!/usr/bin/python3
"""Writes the scikit-learn reference data of tests/algorithms/test_tfidf_analyzers.cpp.

Run with Debian's Python and scikit-learn (python3-sklearn):
    /usr/bin/python3 tests/data/tfidf/make_sklearn_fixtures.py
Outputs, in tests/data/tfidf/sklearn/ (committed: the tests do not need scikit-learn):
    analyzers.json          the corpus, extra transform documents, and for each option set
                            TfidfVectorizer's get_feature_names_out(), idf_, the CSR
                            output of fit_transform and transform (float64), and
                            inverse_transform of the fit_transform output
    english_stop_words.txt  sklearn's ENGLISH_STOP_WORDS, one per line, sorted
Each file starts with (or holds) the versions of scikit-learn, Python and Unicode used.
"""
import json
import os
import sys
import unicodedata

import sklearn
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sklearn")

# Accents (composed and decomposed), CJK, Greek final sigma, dotted capital I,
# compatibility characters, punctuation, runs of mixed whitespace (tabs, newlines, NBSP,
# ideographic space), single whitespace characters that are not spaces, short words.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "Café café CAFÉ cafe\u0301 Cafe\u0301 naïve nai\u0308ve résumé Ångström",
    "东京 北京市 日本語のテキスト 中文 字",
    "ΟΔΟΣ οδός ΣΑΣ σοφός ΑΣ. ΜΙΣΟΣ",
    "İstanbul İSTANBUL istanbul ıi DİYARBAKIR",
    "Straße STRASSE Fuß groß ﬁle ﬂow ＡＢＣ ａｂｃ ½ ² Ⅻ",
    "a b c d e f  x   yz",
    "!!! ... ??? --- ;;; ,,, (parenthesised) [bracketed] {braced}",
    "Line one\r\nLine two\r\n\n\tTabbed\t\tline three\x0bvt\x1cfs",
    "hello\u00a0world\u2003\u2003wide\u3000space \u00a0 nbsp-run",
    "It's the dog's bone; don't they're we've O'Neil",
    "The dog barks; the FOX runs. Dog, dog, DOG! and then and again and",
    "under_score _leading trailing_ __init__ snake_case x1 y2 42 3.14",
    "emoji 😀😀 fun 🎉party🎉 👍🏽ok",
    "Москва МОСКВА Привет мир",
    "Crème brûlée, piñata, jalapeño, façade, coöperate, Zoë",
    "x",
    "   \t\r\n  ",
    "quick quick brown brown fox fox fox",
]

TRANSFORM_DOCS = [
    "The unknown zebra meets the quick dog",
    "",
    "café crème ΟΔΟΣ москва dog dog 东京",
    "completely novel words only",
]

FIXED_VOCABULARY = ["dog", "quick", "café", "cafe", "zebra", "東京", "the", "fox", "brown"]

CASES = [
    ("char_1_3", {"analyzer": "char", "ngram_range": (1, 3)}),
    ("char_wb_2_5", {"analyzer": "char_wb", "ngram_range": (2, 5)}),
    ("word_1_2_stop_english", {"ngram_range": (1, 2), "stop_words": "english"}),
    ("pattern_unicode_words", {"token_pattern": r"(?u)\b\w+\b"}),
    ("pattern_ascii_letters", {"token_pattern": r"[A-Za-z]+"}),
    ("pattern_one_group", {"token_pattern": r"(\w+)'\w+"}),
    ("strip_accents_ascii", {"strip_accents": "ascii"}),
    ("strip_accents_unicode", {"strip_accents": "unicode"}),
    ("char_wb_strip_accents_unicode", {"analyzer": "char_wb", "ngram_range": (2, 3), "strip_accents": "unicode"}),
    ("no_lowercase_char_wb", {"analyzer": "char_wb", "ngram_range": (1, 3), "lowercase": False}),
    ("no_lowercase_pattern", {"lowercase": False, "token_pattern": r"(?u)\b\w+\b"}),
    ("fixed_vocabulary", {"vocabulary": FIXED_VOCABULARY}),
    ("binary_char_2_4", {"analyzer": "char", "ngram_range": (2, 4), "binary": True}),
    ("binary_word_stop_list", {"binary": True, "stop_words": ["the", "and", "dog"], "ngram_range": (1, 3)}),
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


def main():
    cases = []
    for name, options in CASES:
        vec = TfidfVectorizer(**options)
        x = vec.fit_transform(CORPUS)
        opts = dict(options)
        if "ngram_range" in opts:
            opts["ngram_range"] = list(opts["ngram_range"])
        cases.append({
            "name": name,
            "options": opts,
            "feature_names": [str(t) for t in vec.get_feature_names_out()],
            "idf": [float(v) for v in vec.idf_],
            "fit_transform": csr_json(x),
            "transform": csr_json(vec.transform(TRANSFORM_DOCS)),
            "inverse_transform": [[str(t) for t in row] for row in vec.inverse_transform(x)],
        })
    versions = {
        "sklearn": sklearn.__version__,
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "analyzers.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump({"generated_by": "tests/data/tfidf/make_sklearn_fixtures.py", "versions": versions,
                   "corpus": CORPUS, "transform_documents": TRANSFORM_DOCS, "cases": cases},
                  f, ensure_ascii=False, indent=None)
        f.write("\n")
    with open(os.path.join(OUT, "english_stop_words.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# sklearn.feature_extraction.text.ENGLISH_STOP_WORDS, scikit-learn %s (BSD 3-Clause);"
                " tests/data/tfidf/make_sklearn_fixtures.py\n" % sklearn.__version__)
        for w in sorted(ENGLISH_STOP_WORDS):
            f.write(w + "\n")


if __name__ == "__main__":
    main()
