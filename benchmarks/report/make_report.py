"""Writes docs/report/README.md and its PNG plots from the runners' JSON results
(benchmarks/report.sh runs everything; this is its last step).

    python benchmarks/report/make_report.py --results out/report/results --meta out/report/results/meta.json \
        --docs docs/report
"""

import argparse
import datetime
import glob
import json
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["ALS", "Cosine top-10", "k-NN", "TF-IDF", "SpMV"]
SLUG = {"ALS": "als", "Cosine top-10": "cosine", "k-NN": "knn", "TF-IDF": "tfidf", "SpMV": "spmv"}


def method_of(slug):
    """The runner's docstring (benchmarks/report/<slug>.py) without its usage lines, as paragraphs."""
    import ast
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{slug}.py")
    doc = ast.get_docstring(ast.parse(open(path).read())) or ""
    paragraphs = [" ".join(line.strip() for line in block.splitlines())
                  for block in doc.split("\n\n") if not block.lstrip().startswith("python ")]
    return "\n\n".join(p for p in paragraphs if p)


def med(xs):
    return statistics.median(xs)


def fmt_time(s, unit):
    if s < 0.1:
        return f"{s * 1e3:.2f} ms" if unit == "s" else f"{s * 1e3:.1f} ms/it"
    return f"{s:.3f} s" if unit == "s" else f"{s:.3f} s/it"


def targets(results):
    """(target, measured, met) rows for the issue's targets that this run measured."""
    rows = []
    by = {(w["workload"], d["dataset"]): d for w in results.values() for d in w["datasets"]}
    d = by.get(("ALS", "ml20m"))
    if d:
        peer, cg = med(d["times"][d["peer"]]), med(d["times"]["mgpu CG"])
        rows.append(("ALS CG ≥ 3× implicit's seconds per iteration, ML-20M-shaped, 64 factors",
                     f"{peer / cg:.2f}× ({cg:.3f} vs {peer:.3f} s/it)", peer / cg >= 3))
        rows.append(("ALS CG ≤ 0.4 s per iteration (implicit's published GTX 1080 Ti figure)",
                     f"{cg:.3f} s/it", cg <= 0.4))
        worse = d["loss_vs_peer"]
        rows.append(("ALS CG final loss no worse than implicit's (same definition, iterations and start; "
                     "within 1e-5 relative, float32 rounding)",
                     f"{worse * 100:+.5f}% ({d['losses']['mgpu CG']:.7g} vs {d['losses'][d['peer']]:.7g})",
                     worse <= 1e-5))
    d = by.get(("Cosine top-10", "wordnet"))
    if d:
        peer = med(d["times"][d["peer"]])
        for s in [s for s in d["times"] if s.startswith("mgpu")]:
            m = med(d["times"][s])
            rows.append((f"Cosine top-10 on WordNet ≥ 3× sparse_dot_topn (2 threads): {s}",
                         f"{peer / m:.2f}× ({m:.3f} vs {peer:.3f} s)", peer / m >= 3))
    d = by.get(("k-NN", "fashion-mnist"))
    if d:
        peer = med(d["times"][d["peer"]])
        for s in [s for s in d["times"] if s.startswith("mgpu")]:
            m = med(d["times"][s])
            rows.append((f"k-NN ≥ 1.5× faiss-cpu IndexFlatL2: {s}", f"{peer / m:.2f}× ({m:.3f} vs {peer:.3f} s)",
                         peer / m >= 1.5))
    for name in ("linux-doc", "wordnet"):
        d = by.get(("TF-IDF", name))
        if d:
            peer, m = med(d["times"][d["peer"]]), med(d["times"][d["mgpu"]])
            rows.append((f"TF-IDF ≥ 25× scikit-learn on {name}", f"{peer / m:.1f}× ({m:.3f} vs {peer:.3f} s)",
                         peer / m >= 25))
    return rows


def bars(workload, w, path):
    ds = w["datasets"]
    fig, axes = plt.subplots(1, len(ds), figsize=(4.2 * len(ds) + 1, 3.8), squeeze=False)
    for ax, d in zip(axes[0], ds):
        names = list(d["times"])
        meds = [med(d["times"][n]) for n in names]
        lo = [m - min(d["times"][n]) for m, n in zip(meds, names)]
        hi = [max(d["times"][n]) - m for m, n in zip(meds, names)]
        colors = ["tab:blue" if n.startswith("mgpu") else "tab:gray" for n in names]
        ax.bar(range(len(names)), meds, yerr=[lo, hi], color=colors, capsize=4)
        for i, m in enumerate(meds):
            ax.annotate(fmt_time(m, d["unit"]), (i, m), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.replace(" (", "\n(") for n in names], rotation=30, ha="right", fontsize=7)
        ax.set_title(d["dataset"], fontsize=9)
        ax.set_ylabel(d["unit"] + " (median; bars: min–max)", fontsize=8)
        if max(meds) / max(min(meds), 1e-12) > 20:
            ax.set_yscale("log")
    reps = sorted({len(d["times"][d["mgpu"]]) for d in ds})
    fig.suptitle(f"{workload}: mgpu (blue) and peers (grey), {'/'.join(map(str, reps))} repetitions", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling(results, path):
    """mgpu's time per device string (cpu:1, cpu:2, cpu) where a runner timed several."""
    panels = []
    for wname in ORDER:
        w = results.get(wname)
        if not w:
            continue
        for d in w["datasets"]:
            pts = {}
            for s, t in d["times"].items():
                m = re.match(r"mgpu (?:CG )?(cpu(?::\d+)?)$", s)
                if m and not (wname == "ALS" and s == "mgpu Cholesky"):
                    pts[m.group(1)] = t
            if wname == "ALS" and "mgpu CG" in d["times"]:
                pts["cpu"] = d["times"]["mgpu CG"]
            if len(pts) >= 2:
                panels.append((f"{wname}, {d['dataset']}", d["unit"], pts))
    if not panels:
        return False
    order = lambda k: (0, int(k.split(":")[1])) if ":" in k else (1, 0)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1, 3.2), squeeze=False)
    for ax, (title, unit, pts) in zip(axes[0], panels):
        keys = sorted(pts, key=order)
        meds = [med(pts[k]) for k in keys]
        ax.bar(range(len(keys)), meds, yerr=[[m - min(pts[k]) for m, k in zip(meds, keys)],
                                             [max(pts[k]) - m for m, k in zip(meds, keys)]],
               color="tab:blue", capsize=3)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(keys, fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
    fig.suptitle("mgpu by device string (cpu:N = N host devices, one worker thread each; cpu = one device, "
                 "all cores)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", default="out/report/results")
    p.add_argument("--meta", default="out/report/results/meta.json")
    p.add_argument("--docs", default="docs/report")
    a = p.parse_args()
    meta = json.load(open(a.meta))
    results = {}
    for f in sorted(glob.glob(os.path.join(a.results, "*.json"))):
        if os.path.basename(f) == "meta.json":
            continue
        w = json.load(open(f))
        if w["workload"] in results:  # one workload run in parts (cosine: one file per corpus)
            prev = results[w["workload"]]
            prev["datasets"] += w["datasets"]
            prev["load_after"], prev["seconds"] = w["load_after"], prev["seconds"] + w["seconds"]
        else:
            results[w["workload"]] = w
    os.makedirs(a.docs, exist_ok=True)
    loads = [l for w in results.values() for l in (w["load_before"][0], w["load_after"][0])]
    # The runs themselves keep meta["threads"] threads busy, so a load average up to about
    # that many is the benchmark; only more than one runnable thread beyond it is other work.
    loaded = max(loads, default=0) > meta["threads"] + 1
    L = []
    L.append("# mgpu side by side with its peers\n")
    L.append(f"Generated by `{meta['command']}` ({meta['mode']} mode) on {meta['date']} from commit "
             f"`{meta['commit']}`" +
             (f" (the working tree also held {'' if meta['dirty'] is True else str(meta['dirty']) + ' '}uncommitted "
              "changed files under include/, benchmarks/ or examples/: other work in progress)"
              if meta.get("dirty") else "") + ". "
             "Every number below is from this one run; nothing is copied from elsewhere.\n")
    L.append(f"- Machine: {meta['cpu']}, {meta['cores']} logical cores, {meta['memory']}; "
             f"{meta['os']}; compiler {meta['compiler']}.")
    L.append(f"- Threads: every system on {meta['threads']} threads (mgpu `cpu` = one device using every core; "
             "`cpu:2` = two host devices with one worker thread each), except where a peer is single-threaded "
             "(said in its row).")
    L.append(f"- Repetitions: {meta['reps']} per system, interleaved (repetition r runs every system once before "
             "repetition r + 1); tables give the median and the min–max spread, and each system's median divided "
             "by that of mgpu's default configuration (bold): above 1, that system is slower than mgpu.")
    L.append("- Load average (1 min) at the start and end of each workload: " +
             ", ".join(f"{w} {results[w]['load_before'][0]:.2f}→{results[w]['load_after'][0]:.2f}"
                       for w in ORDER if w in results) + ".")
    if loaded:
        L.append(f"- **These numbers are from a loaded machine**: the load average exceeded the benchmark's own "
                 f"{meta['threads']} threads by more than one during the run (other work shared the "
                 f"{meta['cores']} cores), so absolute times are pessimistic and noisy for every system alike; "
                 "the interleaving keeps the ratios comparable.")
    else:
        L.append(f"- Quiet machine: the load average stayed within one of the benchmark's own {meta['threads']} "
                 "busy threads, so nothing else of note ran on the cores.")
    if meta.get("note"):
        L.append(f"- Mode: {meta['note']}")
    L.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    L.append("- Peers from the Python package index are pinned in `benchmarks/requirements-peers.txt` and "
             "installed by `scripts/install-bench-deps.sh`; GraphBLAS and Eigen are Debian's.\n")

    rows = targets(results)
    if rows:
        L.append("## Targets (issue 19)\n")
        L.append("| target | measured | |")
        L.append("|---|---|---|")
        for t, m, ok in rows:
            L.append(f"| {t} | {m} | {'met' if ok else '**missed**'} |")
        missed = [t for t, _, ok in rows if not ok]
        L.append("")
        if missed:
            L.append(f"{len(missed)} of {len(rows)} targets missed in this run: " + "; ".join(missed) + ".\n")
        else:
            L.append("Every target measured in this run is met.\n")

    for wname in ORDER:
        w = results.get(wname)
        if not w:
            continue
        slug = SLUG[wname]
        L.append(f"## {wname}\n")
        doc = method_of(slug)
        if doc:
            L.append(doc + "\n")
        L.append("| data | system | median | min–max | ÷ mgpu's median | agreement with mgpu |")
        L.append("|---|---|---|---|---|---|")
        for d in w["datasets"]:
            base = med(d["times"][d["mgpu"]])
            for i, (s, t) in enumerate(d["times"].items()):
                m = med(t)
                ratio = "1" if s == d["mgpu"] else f"{m / base:.2f}"
                agree = ""
                if i == 0:
                    agree = ("agrees: " if d["agree"] else "**DISAGREES**: ") + d["agreement"]
                label = f"**{s}**" if s == d["mgpu"] else s
                L.append(f"| {d['dataset'] if i == 0 else ''} | {label} | {fmt_time(m, d['unit'])} | "
                         f"{fmt_time(min(t), d['unit'])} – {fmt_time(max(t), d['unit'])} | {ratio} | {agree} |")
        L.append("")
        for d in w["datasets"]:
            L.append(f"- {d['dataset']}: {d['what']}; peer: {d['peer']} "
                     f"({', '.join(f'{k} {v}' for k, v in d.get('versions', {}).items())}).")
            for n in d.get("notes", []):
                L.append(f"  - {n}")
        L.append(f"- Load average {w['load_before'][0]:.2f} at the start, {w['load_after'][0]:.2f} at the end; "
                 f"{w['seconds']:.0f} s in all.\n")
        png = f"{slug}.png"
        bars(wname, w, os.path.join(a.docs, png))
        L.append(f"![{wname}]({png})\n")
    if scaling(results, os.path.join(a.docs, "scaling.png")):
        L.append("## Scaling over device strings\n")
        L.append("mgpu's median time per device string on this machine, from the same runs as the tables "
                 f"above ({meta['cores']} cores, so at most 2 host devices do useful work).\n")
        L.append("![scaling](scaling.png)\n")
    L.append("## Reproducing\n")
    L.append("```\nscripts/install-bench-deps.sh      # Debian peers and data, and the pinned Python peers in a venv\n"
             f"{meta['command']}\n```\n")
    L.append("`benchmarks/report.sh --quick` takes under 10 minutes (fewer repetitions, subsets); the full "
             "mode runs every workload at full size with at least 5 interleaved repetitions. The runners are "
             "`benchmarks/report/*.py`; their raw results (every repetition) are in `out/report/results/*.json`.")
    with open(os.path.join(a.docs, "README.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {os.path.join(a.docs, 'README.md')}")


if __name__ == "__main__":
    main()
