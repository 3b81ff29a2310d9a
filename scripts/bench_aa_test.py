"""The repeats test's false-verdict rate on simulated A/A comparisons, for two choices of its degrees of freedom.

    python scripts/bench_aa_test.py                                  # 1,000 simulated comparisons per cell
    python scripts/bench_aa_test.py --save results/aa_simulation     # the printed table, under results/

Two groups of K fits of one recipe score the same molecules (120 binders / 140 hard negatives); each fit has its own
signal strength and learned direction (training noise, sd ``fit_sd``) over the molecules' shared difficulty. Every
call of "different" is false. Printed per cell: r (the between-repeat sd of the paired AUROC difference / DeLong's
se), and the share of comparisons called different at alpha 0.05 by one repeat's DeLong, by the repeats test with
Satterthwaite's df and with K - 1 df (what delbind.evaluation.statistics.repeated_paired_test uses).
"""

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from delbind.evaluation.statistics import delong, repeated_paired_test, satterthwaite_df  # noqa: E402
from delbind.results import save  # noqa: E402

LABELS = np.r_[np.ones(120, int), np.zeros(140, int)]


def fits(rng: np.random.Generator, n_fits: int, fit_sd: float, labels: np.ndarray = LABELS) -> list[np.ndarray]:
    """Scores of ``n_fits`` models of one recipe on one draw of molecules."""
    z, shared = rng.normal(size=labels.size), rng.normal(size=labels.size)
    out = []
    for _ in range(n_fits):
        signal, weight = 1.0 + rng.normal(0, fit_sd), rng.normal(0, fit_sd)
        out.append(labels * signal + shared + weight * z + 0.3 * rng.normal(size=labels.size))
    return out


def false_rates(repeats: int, fit_sd: float, n: int, seed: int = 7, alpha: float = 0.05) -> dict[str, float]:
    """Over ``n`` simulated A/A comparisons of ``repeats`` repeats a side: median r and each test's share of calls."""
    rng = np.random.default_rng(seed)
    calls = {"one repeat": 0, "Satterthwaite df": 0, "K - 1 df": 0}
    ratios = []
    for _ in range(n):
        scores = fits(rng, 2 * repeats, fit_sd)
        each = [delong(LABELS, scores[k], scores[repeats + k]) for k in range(repeats)]
        diffs, variances = [t.diff for t in each], [t.se**2 for t in each]
        test = repeated_paired_test(diffs, variances)
        satt = 2 * stats.t.sf(abs(test.diff) / test.se, satterthwaite_df(diffs, variances))
        calls["one repeat"] += each[0].p < alpha
        calls["Satterthwaite df"] += satt < alpha
        calls["K - 1 df"] += test.p < alpha
        ratios.append(np.std(diffs, ddof=1) / np.mean([t.se for t in each]))
    return {"r": float(np.median(ratios)), **{k: v / n for k, v in calls.items()}}


def table(n: int) -> str:
    lines = [
        "| fit sd | repeats a side | r | one repeat (DeLong) | repeats test, Satterthwaite df "
        "| repeats test, K - 1 df |",
        "|---|---|---|---|---|---|",
    ]
    for fit_sd in (0.05, 0.1, 0.25):
        for k in (3, 5):
            found = false_rates(k, fit_sd, n)
            lines.append(f"| {fit_sd} | {k} | {found['r']:.1f} | {found['one repeat']:.3f} "
                         f"| {found['Satterthwaite df']:.3f} | {found['K - 1 df']:.3f} |")  # fmt: skip
    lines += ["", f"Share of {n:,} simulated A/A comparisons per row called different at alpha 0.05 (all are false)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="simulated comparisons per row (default: %(default)s)")
    parser.add_argument("--save", type=Path, help="results dir for the printed table (simulation.md)")
    args = parser.parse_args()
    text = table(args.n)
    print(text)
    if args.save:
        command = "python scripts/bench_aa_test.py" + (f" --n {args.n}" if args.n != 1000 else "")
        print(f"written: {save(args.save, 'simulation', text, command, ROOT)}")
