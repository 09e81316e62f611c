"""Implicit ALS, 64 factors: mgpu (examples/als_recommend, conjugate gradient and
Cholesky) against implicit.cpu.als.AlternatingLeastSquares (conjugate gradient), same
matrix, factors, regularization, alpha, CG steps, iterations and 2 threads; seconds per
iteration and the final loss of both, computed here with one definition.

Same objective on both sides. mgpu minimises (include/mgpu/algorithms/als.hpp)
    L = Σ_{u,i} w_ui (t_ui − x_u·y_i)² + λ (Σ‖x_u‖² + Σ‖y_i‖²),
    observed: w = 1 + α·r, t = 1; unobserved: w = 1, t = 0.
implicit's CPU solver gives an observed entry the weight c it is given (its `alpha`
multiplies the matrix: c = alpha·r), target 1, unobserved weight 1. So implicit is given
C = 1 + α·R (same sparsity) and alpha = 1: the two objectives are then identical. Both
run cg_steps = 3; λ = 0.01, α = 1 (mgpu's and implicit's defaults). Both start from the
same factors: mgpu's initial factors (als_recommend --iterations 0 --save-factors; uniform
in [0, 0.01) like implicit's own start, zero for empty rows) are handed to implicit before
its fit, so the two run the same algorithm from the same point and their final factors
are compared directly, not only their losses.

Timed: mgpu's per-iteration seconds as mgpu::als reports them (both half-steps, the
loss excluded; one als_recommend process per repetition and solver), implicit's
per-iteration seconds from its fit callback (calculate_training_loss=False, num_threads=2,
its BLAS limited to 1 thread as implicit asks). Per repetition the median over that fit's
iterations; interleaved repetitions. The loss L is computed here in float64 from each
side's final factors (and checked against the loss mgpu prints).

    python benchmarks/report/als.py --build build-19 --reps 5 --iterations 10 \
        --out out/report/results/als.json ml20m=out/report/work/ml20m.mtx debian=out/debian-packages.mtx
"""

import argparse
import os

import numpy as np
import scipy.io
import scipy.sparse
import implicit
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from common import THREADS, build_path, log, median, pin_threads, run, write_result

FACTORS, REG, ALPHA, CG_STEPS = 64, 0.01, 1.0, 3


def objective(r, x, y):
    """mgpu's L (see the module comment) in float64; r: users x items CSR of raw values."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    total = float(np.sum((x64.T @ x64) * (y64.T @ y64)))  # Σ over all pairs of (x·y)²
    coo = r.tocoo()
    rows, cols, vals = coo.row, coo.col, coo.data.astype(np.float64)
    step = 500_000
    for s in range(0, len(vals), step):
        p = np.einsum("ij,ij->i", x64[rows[s:s + step]], y64[cols[s:s + step]])
        w = 1.0 + ALPHA * vals[s:s + step]
        total += float(np.sum(w * (1.0 - p) ** 2 - p * p))
    return total + REG * (float(np.sum(x64 * x64)) + float(np.sum(y64 * y64)))


def run_mgpu(exe, mtx, solver, devices, iterations, prefix):
    out, _, _ = run([exe, "--input", mtx, "--factors", str(FACTORS), "--iterations", str(iterations),
                     "--regularization", str(REG), "--alpha", str(ALPHA), "--cg-steps", str(CG_STEPS),
                     "--solver", solver, "--devices", devices, "--save-factors", prefix])
    its = [line.split() for line in out.splitlines() if line.startswith("iteration ")]
    seconds = [float(t[3].split("=")[1]) for t in its]
    loss = float(its[-1][2].split("=")[1])
    return seconds, loss


def run_implicit(c, iterations, x0, y0):
    seconds = []
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=FACTORS, regularization=REG, alpha=1.0, iterations=iterations,
                                        use_cg=True, calculate_training_loss=False, num_threads=THREADS,
                                        random_state=42)
        model.cg_steps = CG_STEPS  # an attribute in implicit 0.7, 3 by default
        model.user_factors, model.item_factors = x0.copy(), y0.copy()  # fit starts from these
        model.fit(c, show_progress=False, callback=lambda it, elapsed, loss: seconds.append(elapsed))
    return seconds, model.user_factors, model.item_factors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("matrices", nargs="+", help="NAME=PATH.mtx (users x items)")
    p.add_argument("--build", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--solvers", default="cg,cholesky")
    p.add_argument("--scaling", action="store_true", help="also time mgpu CG on cpu:2")
    p.add_argument("--work", default="out/report/work")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    pin_threads()
    exe = build_path(a.build, "examples", "als_recommend", "als_recommend")
    os.makedirs(a.work, exist_ok=True)
    datasets = []
    for spec in a.matrices:
        name, mtx = spec.split("=", 1)
        r = scipy.io.mmread(mtx).tocsr().astype(np.float32)
        c = r.copy()
        c.data = 1.0 + ALPHA * c.data
        runs = [("mgpu CG", "cg", "cpu"), ("mgpu Cholesky", "cholesky", "cpu")]
        runs = [x for x in runs if x[1] in a.solvers.split(",")]
        if a.scaling:
            runs += [("mgpu CG cpu:2", "cg", "cpu:2")]
        peer = f"implicit CG ({THREADS} threads)"
        times = {label: [] for label, _, _ in runs}
        times[peer] = []
        printed, last = {}, {}
        init = os.path.join(a.work, f"als.{name}.init")
        run([exe, "--input", mtx, "--factors", str(FACTORS), "--iterations", "0", "--save-factors", init])
        x0 = np.ascontiguousarray(scipy.io.mmread(init + ".users.mtx"), dtype=np.float32)
        y0 = np.ascontiguousarray(scipy.io.mmread(init + ".items.mtx"), dtype=np.float32)
        for rep in range(a.reps):
            for label, solver, devices in runs:
                prefix = os.path.join(a.work, f"als.{name}.{solver}.{devices}")
                secs, loss = run_mgpu(exe, mtx, solver, devices, a.iterations, prefix)
                times[label].append(median(secs))
                printed[label], last[label] = loss, prefix
            secs, xu, yi = run_implicit(c, a.iterations, x0, y0)
            times[peer].append(median(secs))
            log(f"als {name} rep {rep + 1}: " + ", ".join(f"{s} {t[-1]:.3f} s/it" for s, t in times.items()))
        losses, checks, factors = {}, [], {}
        for label in ("mgpu CG", "mgpu Cholesky"):
            if label not in last:
                continue
            x = np.asarray(scipy.io.mmread(last[label] + ".users.mtx"))
            y = np.asarray(scipy.io.mmread(last[label] + ".items.mtx"))
            factors[label] = (x, y)
            losses[label] = objective(r, x, y)
            rel = abs(losses[label] - printed[label]) / printed[label]
            checks.append(f"{label}: L recomputed here {losses[label]:.6g}, printed by mgpu {printed[label]:.6g} "
                          f"(relative difference {rel:.1e})")
        losses[peer] = objective(r, xu, yi)
        worse = losses["mgpu CG"] / losses[peer] - 1.0
        x, y = factors["mgpu CG"]
        rel = lambda m, ref: float(np.linalg.norm(m.astype(np.float64) - ref) / np.linalg.norm(ref.astype(np.float64)))
        fx, fy = rel(x, xu), rel(y, yi)
        # Same algorithm from the same start: the factors differ by float32 rounding
        # (summation order), which CG carries along; 1e-2 relative is far below what a
        # different algorithm or objective gives (compare mgpu Cholesky's factors).
        ok = all(abs(losses[l] - printed[l]) <= 1e-6 * printed[l] for l in losses if l in printed) and \
            abs(worse) <= 1e-3 and max(fx, fy) <= 1e-2
        text = (f"final loss L after {a.iterations} iterations from the same start: " +
                ", ".join(f"{k} {v:.7g}" for k, v in losses.items()) +
                f"; mgpu CG's loss is {abs(worse) * 100:.4f}% {'above' if worse > 0 else 'below'} implicit's; "
                f"mgpu CG's factors differ from implicit's by {fx:.1e} (users) and {fy:.1e} (items), "
                "relative Frobenius norm")
        if "mgpu Cholesky" in factors:
            cx, cy = factors["mgpu Cholesky"]
            checks.append(f"for scale: mgpu Cholesky's factors differ from implicit CG's by {rel(cx, xu):.1e} "
                          f"(users) and {rel(cy, yi):.1e} (items)")
        log(f"als {name}: {text}; " + "; ".join(checks))
        datasets.append({"dataset": name, "unit": "s/iteration",
                         "what": f"{r.shape[0]} users x {r.shape[1]} items, nnz {r.nnz}, {FACTORS} factors, "
                                 f"{a.iterations} iterations",
                         "times": times, "mgpu": "mgpu CG", "peer": peer, "agree": ok, "agreement": text,
                         "losses": losses, "loss_vs_peer": worse,
                         "versions": {"implicit": implicit.__version__},
                         "notes": checks + ["implicit is given 1 + α·r as its confidence with alpha = 1 "
                                            "(the same objective as mgpu's w = 1 + α·r) and mgpu's initial "
                                            "factors"]})
    write_result(a.out, "ALS", datasets)


if __name__ == "__main__":
    main()
