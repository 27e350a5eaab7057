"""BG/NBD on 1M customers: churnguard's BetaGeoModel vs lifetimes' BetaGeoFitter, in the same run.

Data: sampled from the BG/NBD generative process with the CDNOW parameters (r = 0.2426, α = 4.4135,
a = 0.7929, b = 2.4258), seeded.  Each customer's first purchase falls on a day of a 12-week
acquisition quarter and the calibration period ends 39 weeks after the quarter starts; purchase times
are recorded by day (as transaction logs are), so ``t_x`` and ``T`` are whole days in weeks — the shape
of the CDNOW summary.  Generative process, per customer::

    λ ~ Gamma(r, 1/α), p ~ Beta(a, b); J ~ Geometric(p) repeat purchases before dropping out;
    N ~ Poisson(λ T) purchases if alive throughout; x = min(J, N);
    t_x = x-th of N uniform arrival times on (0, T] = T · Beta(x, N − x + 1)

Each fitter runs in its own child process (so peak RSS is its own), alternating, ``--repeat`` times;
the fit alone is timed inside the child.  The result is appended to ``results/clv_bgnbd.json``.

    .venv/bin/python benchmarks/clv_bgnbd.py [--customers 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
WORK = HERE / "work"
RESULTS = HERE / "results" / "clv_bgnbd.json"
TRUE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
SEED = 20260523


def simulate(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    first_day = rng.integers(0, 84, n)
    t_days = 273 - first_day
    big_t = t_days / 7.0
    j = rng.geometric(p)
    count = rng.poisson(lam * big_t)
    x = np.minimum(j, count)
    frac = np.zeros(n)
    pos = x > 0
    frac[pos] = rng.beta(x[pos], count[pos] - x[pos] + 1)
    tx_days = np.where(pos, np.minimum(np.round(frac * t_days), t_days), 0)
    return {"frequency": x.astype(np.float64), "recency": tx_days / 7.0, "T": big_t}


def child(which: str, path: Path) -> None:
    """Fit one model on the saved data; print JSON with the fit seconds and parameters."""
    import resource

    d = np.load(path)
    x, tx, big_t = d["frequency"], d["recency"], d["T"]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    import pandas as pd  # both fitters use it: import it before the clock starts

    if which == "churnguard":
        from churnguard.clv import BetaGeoModel

        t0 = time.perf_counter()
        m = BetaGeoModel().fit(x, tx, big_t)
        seconds = time.perf_counter() - t0
        params, extra = m.params_, {"iterations": m.n_iter_, "n_distinct": m.n_distinct_}
        ll = m.log_likelihood_
    else:
        import warnings

        warnings.filterwarnings("ignore")
        from lifetimes import BetaGeoFitter

        t0 = time.perf_counter()
        f = BetaGeoFitter().fit(pd.Series(x), pd.Series(tx), pd.Series(big_t))
        seconds = time.perf_counter() - t0
        params = {k: float(v) for k, v in f.params_.items()}
        from churnguard.clv import BetaGeoModel

        theta = [params[k] for k in ("r", "alpha", "a", "b")]
        ll, extra = BetaGeoModel().log_likelihood(theta, [x, tx, big_t], np.ones(len(x))), {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    out = {"fit_s": seconds, "params": params, "log_likelihood": ll, "rss_before_fit_mb": rss_before}
    out.update(peak_rss_mb=peak, **extra)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", choices=["churnguard", "lifetimes"])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    WORK.mkdir(exist_ok=True)
    data_path = WORK / f"bgnbd_{args.customers}.npz"
    t0 = time.perf_counter()
    data = simulate(args.customers)
    np.savez(data_path, **data)
    sim_s = time.perf_counter() - t0
    runs: dict[str, list[dict]] = {"churnguard": [], "lifetimes": []}
    load_start = os.getloadavg()
    for _ in range(args.repeat):
        for which in ("churnguard", "lifetimes"):
            cmd = [sys.executable, __file__, "--child", which, "--data", str(data_path)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[which].append(json.loads(out.strip().splitlines()[-1]))
            print(which, runs[which][-1], flush=True)
    ours, theirs = runs["churnguard"][-1]["params"], runs["lifetimes"][-1]["params"]
    max_rel = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in TRUE)
    best = {k: min(r["fit_s"] for r in v) for k, v in runs.items()}
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "customers": args.customers,
        "seed": SEED,
        "true_params": TRUE,
        "distinct_triples": runs["churnguard"][-1]["n_distinct"],
        "simulate_s": round(sim_s, 2),
        "runs": runs,
        "best_fit_s": best,
        "speedup": round(best["lifetimes"] / best["churnguard"], 1),
        "peak_rss_mb": {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()},
        "rss_before_fit_mb": {k: max(r["rss_before_fit_mb"] for r in v) for k, v in runs.items()},
        "max_relative_param_difference": max_rel,
        "params_identical_to_1e-3": max_rel < 1e-3,
        "cpus": os.cpu_count(),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "note": args.note,
    }
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps([*old, record], indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("best_fit_s", "speedup", "peak_rss_mb", "max_relative_param_difference")}))


if __name__ == "__main__":
    main()
