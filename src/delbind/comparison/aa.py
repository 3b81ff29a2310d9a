"""The A/A study: init seeds of one recipe on the same folds, compared with each other.

Two seeds of one recipe differ only by training noise, so every "better" or "worse" between them is false. For each
recipe it measures (1) the fit-to-fit spread of the pooled out-of-fold figures and its ratio r to DeLong's se,
(2) every pair of seeds through one repeat's pooled DeLong / bootstrap (what a comparison of one repeat prints:
a verdict about those fitted models), (3) every split of the seeds into two groups of repeats through the test that
counts training noise (``repeated_paired_test``: a verdict about arms), and (4) that test's power at a true hard-AUROC
difference, simulated with the measured spreads against a reference recipe. Each pair or split is one comparison of
two rows, so no Holm adjustment: the threshold is alpha itself (a comparison table's Holm would only lower the count).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from delbind.comparison.pooled import pooled_predictions
from delbind.comparison.runs import VERDICT, deal_of, load_runs, repeat_order
from delbind.comparison.verdicts import pooled_pair, resolve_arm
from delbind.evaluation import statistics as st

FALSE = ("better", "worse")  # between seeds of one recipe, the verdicts that are wrong
SPLIT_SIZE = 5  # repeats per group in a split: the experiments' default number of repeats


def recipe_runs(paths: Iterable[Path | str], strict: bool = False) -> pd.DataFrame:
    """The runs below ``paths`` with ``recipe`` = their comparison row without the ``label`` a sweep gave them (the
    same recipe may be kept under several labels); two runs of one recipe on one (data_seed, seed, fold) are refused,
    as they would be two recipes under one name."""
    runs = load_runs(paths, strict=strict, labels=False)  # rows by recipe; the clash is refused there
    return runs.assign(recipe=runs["arm"])


class _Pairs:
    """Pooled pair tests between seeds (cached: each split reuses them)."""

    def __init__(self, pooled: dict[tuple[str, str], pd.DataFrame], n_bootstrap: int) -> None:
        self.pooled, self.n_bootstrap, self.cache = pooled, n_bootstrap, {}

    def test(self, a: tuple[str, str], b: tuple[str, str], metric: str) -> st.PairedTest:
        key = (a, b, metric)
        if key not in self.cache:
            self.cache[key] = pooled_pair(self.pooled[a], self.pooled[b], metric, self.n_bootstrap)
        return self.cache[key]


def study(
    runs: pd.DataFrame, reference: str | None, margin: float = 0.02, alpha: float = 0.05, n_bootstrap: int = 1000,
    n_sim: int = 2000, seed: int = 0,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """{"pairs", "splits", "spread", "power"} for the recipes of ``runs`` (from ``recipe_runs``)."""
    pooled = pooled_predictions(runs)
    seeds = {recipe: sorted({r for (x, r) in pooled if x == recipe}, key=repeat_order) for recipe in runs["recipe"]}
    tests = _Pairs(pooled, n_bootstrap)
    pairs, splits = [], []
    for recipe, repeats in seeds.items():
        for a, b in itertools.combinations(repeats, 2):  # one repeat against one: these fitted models
            if deal_of(a) != deal_of(b):
                continue  # other folds: not an A/A pair on the same molecules
            row: dict[str, Any] = {"recipe": recipe, "a": a, "b": b}
            for m in VERDICT:
                t = tests.test((recipe, a), (recipe, b), m)
                row |= {
                    f"{m}_diff": t.diff,
                    f"{m}_se": t.se,
                    f"{m}_p": t.p,
                    f"{m}_verdict": st.pair_verdict(t, margin, alpha),
                }
            pairs.append(row)
        splits += _splits(recipe, repeats, tests, margin, alpha)
    pairs_df, splits_df = pd.DataFrame(pairs), pd.DataFrame(splits)
    spread = _spread(runs, pooled, seeds, pairs_df, splits_df)
    ref = None if reference is None else resolve_arm(spread.rename(columns={"recipe": "arm"}), reference)
    power = _power(spread, pooled, seeds, tests, ref, alpha, n_sim, seed) if ref else pd.DataFrame()
    return {"pairs": pairs_df, "splits": splits_df, "spread": spread, "power": power}


def _splits(recipe: str, repeats: list[str], tests: _Pairs, margin: float, alpha: float) -> list[dict[str, Any]]:
    """Every split of the recipe's seeds (one deal) into two groups of h = min(seeds // 2, SPLIT_SIZE) repeats,
    paired in seed order as a comparison pairs repeats, through the test that counts training noise."""
    by_deal: dict[str, list[str]] = {}
    for r in repeats:
        by_deal.setdefault(deal_of(r), []).append(r)
    out = []
    for reps in by_deal.values():
        h = min(len(reps) // 2, SPLIT_SIZE)
        if h < 2:
            continue
        for group in itertools.combinations(reps, 2 * h):
            for a in itertools.combinations(group, h):
                if group[0] not in a:
                    continue  # each split once: the group holding the first seed is "a"
                b = [r for r in group if r not in a]
                row: dict[str, Any] = {"recipe": recipe, "a": " ".join(a), "b": " ".join(b), "repeats": h}
                for m in VERDICT:
                    each = [tests.test((recipe, x), (recipe, y), m) for x, y in zip(a, b)]
                    t = st.repeated_paired_test([e.diff for e in each], [e.se**2 for e in each])
                    row |= {f"{m}_diff": t.diff, f"{m}_se": t.se, f"{m}_df": t.df, f"{m}_p": t.p}
                    row[f"{m}_verdict"] = st.pair_verdict(t, margin, alpha)
                out.append(row)
    return out


def _spread(
    runs: pd.DataFrame, pooled: dict, seeds: dict[str, list[str]], pairs: pd.DataFrame, splits: pd.DataFrame
) -> pd.DataFrame:
    """Per recipe: seeds, the pooled hard figures' mean and sd over seeds (the fit-to-fit spread), DeLong's median se
    between two seeds, r = sd of a two-fit difference / that se, and the false verdicts of each machinery."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = []
    for recipe, repeats in seeds.items():
        hard = [pooled[(recipe, r)].query("eval_set == 'test_hard'") for r in repeats]
        auroc = np.array([roc_auc_score(h["label"], h["score"]) for h in hard])
        auprc = np.array([average_precision_score(h["label"], h["score"]) for h in hard])
        row: dict[str, Any] = {"recipe": recipe, "seeds": len(repeats)}
        own = runs[(runs["recipe"] == recipe) & runs["repeat"].isin(repeats)]
        cost = pd.to_numeric(own.get("train_runtime_s", pd.Series(np.nan, own.index)), errors="coerce")
        row["train_s_per_repeat"] = float(cost.groupby(own["repeat"]).sum(min_count=1).mean())
        row |= {"hard_auroc_mean": auroc.mean(), "hard_auroc_sd": auroc.std(ddof=1) if len(auroc) > 1 else np.nan}
        row |= {"hard_auprc_mean": auprc.mean(), "hard_auprc_sd": auprc.std(ddof=1) if len(auprc) > 1 else np.nan}
        for m in ("val_hard_auroc", "val_hard_auprc"):  # what a selection rule is judged on: CV val, never test
            per_seed = pd.to_numeric(own.get(m, pd.Series(np.nan, own.index)), errors="coerce").groupby(own["repeat"])
            values = per_seed.mean().dropna()
            row |= {f"{m}_mean": values.mean(), f"{m}_sd": values.std(ddof=1) if len(values) > 1 else np.nan}
        mine = pairs[pairs["recipe"] == recipe] if not pairs.empty else pairs
        se = float(mine["test_hard_auroc_se"].median()) if len(mine) else np.nan
        r = np.sqrt(2) * row["hard_auroc_sd"] / se if se > 0 else np.nan
        row |= {"delong_se": se, "r": r, "expected_false_rate": 2 * stats.norm.sf(1.96 / np.sqrt(1 + r**2))}
        row["pairs"] = len(mine)
        for m in VERDICT:
            row[f"pairs_false_{m}"] = int(mine[f"{m}_verdict"].isin(FALSE).sum()) if len(mine) else 0
        here = splits[splits["recipe"] == recipe] if not splits.empty else splits
        row["splits"], row["split_repeats"] = len(here), int(here["repeats"].iloc[0]) if len(here) else 0
        for m in VERDICT:
            row[f"splits_false_{m}"] = int(here[f"{m}_verdict"].isin(FALSE).sum()) if len(here) else 0
        out.append(row)
    return pd.DataFrame(out)


def _power(
    spread: pd.DataFrame, pooled: dict, seeds: dict[str, list[str]], tests: _Pairs, ref: str, alpha: float,
    n_sim: int, seed: int,
) -> pd.DataFrame:  # fmt: skip
    """Per recipe against ``ref``: the chance the repeat test calls a true hard-AUROC difference (0, 0.03, 0.05) at
    3 and 5 repeats, simulated as repeat k's difference = delta + m + t_k: m ~ N(0, se^2) shared by the repeats
    (molecule sampling; se = DeLong's median se of this recipe against ``ref``, seed for seed) and t_k ~ N(0,
    sd_recipe^2 + sd_ref^2) (each fit's own noise, as measured)."""
    rng = np.random.default_rng(seed)
    sd = spread.set_index("recipe")["hard_auroc_sd"]
    out = []
    for recipe, repeats in seeds.items():
        if recipe == ref:
            continue
        shared = [r for r in repeats if r in seeds[ref]]
        if not shared or pd.isna(sd[recipe]) or pd.isna(sd[ref]):
            continue
        se = float(np.median([tests.test((recipe, r), (ref, r), "test_hard_auroc").se for r in shared]))
        train_sd = float(np.sqrt(sd[recipe] ** 2 + sd[ref] ** 2))
        row: dict[str, Any] = {"recipe": recipe, "reference": ref, "delong_se": se, "training_sd": train_sd}
        for k in (3, 5):
            for delta in (0.0, 0.03, 0.05):
                hits = 0
                for _ in range(n_sim):
                    diffs = delta + rng.normal(0, se) + rng.normal(0, train_sd, k)
                    hits += st.repeated_paired_test(diffs, np.full(k, se**2)).p < alpha
                row[f"k{k}_d{delta:g}"] = hits / n_sim
        out.append(row)
    return pd.DataFrame(out)


def _count(row: pd.Series, kind: str) -> str:
    total = row[kind]
    if not total:
        return "n/a (fewer than 4 seeds)" if kind == "splits" else "n/a"
    found = " / ".join(str(int(row[f"{kind}_false_{m}"])) for m in VERDICT)
    return f"{found} of {int(total)} {kind}"


def _val(row: pd.Series) -> str:
    if pd.isna(row["val_hard_auroc_mean"]):
        return "n/a"
    sd = "" if pd.isna(row["val_hard_auroc_sd"]) else f" ({row['val_hard_auroc_sd']:.3f})"
    return f"{row['val_hard_auroc_mean']:.3f}{sd}"


def aa_markdown(result: dict[str, pd.DataFrame], margin: float, alpha: float) -> str:
    """aa.md: the spread and false verdicts per recipe, then the repeat test's simulated power."""
    spread = result["spread"]
    lines = [
        "| recipe | seeds | hard AUROC, mean (sd) | hard AU-PRC, mean (sd) | r | CV val hard AUROC, mean (sd) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['recipe']} | {int(r['seeds'])} | {r['hard_auroc_mean']:.3f} ({r['hard_auroc_sd']:.3f}) "
            f"| {r['hard_auprc_mean']:.3f} ({r['hard_auprc_sd']:.3f}) | {r['r']:.1f} | {_val(r)} |"
            for _, r in spread.iterrows()
        ),
        "",
        "| recipe | false verdicts, one repeat (AUROC / AU-PRC) | false verdicts, repeats test | DeLong se | train s a "
        "repeat |",
        "|---|---|---|---|---|",
    ]
    for _, r in spread.iterrows():
        h = f" ({int(r['split_repeats'])} v {int(r['split_repeats'])})" if r["splits"] else ""
        lines.append(
            f"| {r['recipe']} | {_count(r, 'pairs')} | {_count(r, 'splits')}{h} "
            f"| {r['delong_se']:.4f} | {r['train_s_per_repeat']:,.0f} |"
        )
    lines += [
        "",
        "Every row is one recipe trained with different init seeds on the same five folds (data_seed 0); seeds of one "
        "recipe differ by training noise alone, so every *better* / *worse* between them is false. sd: over seeds of "
        "the pooled out-of-fold figure. CV val: the mean over folds of the chosen checkpoint's val hard AUROC, mean "
        "and sd over seeds (what a checkpoint rule is chosen on; the test figures only report). "
        "r = sqrt(2) sd / DeLong se: the training noise of a two-fit difference in "
        f"units of the se one repeat's test knows of (its false-verdict rate is about 2 Phi(-1.96 / sqrt(1 + r^2))). "
        f"One repeat: each pair of seeds through pooled DeLong (AUROC) / paired bootstrap (AU-PRC) at alpha {alpha}, "
        f"margin {margin}, as a comparison of one repeat judges them. Repeats test: each split of the seeds into two "
        "groups of repeats (paired in seed order), through the test that adds the between-repeat spread "
        "(docs/evaluation.md); splits share seeds, so they are not independent trials. DeLong se: the median over "
        "pairs of seeds. train s a repeat: the five folds' training time, mean over seeds (this machine; runs that "
        "shared the CPU count longer).",
    ]
    total = result["spread"]["train_s_per_repeat"].sum()
    lines += [
        "",
        f"These recipes train for {total:,.0f} s a repeat together ({total / 3600:.1f} h); at {SPLIT_SIZE} repeats, "
        f"{SPLIT_SIZE * total:,.0f} s ({SPLIT_SIZE * total / 3600:.1f} h), one job at a time on this machine.",
    ]
    power = result["power"]
    if not power.empty:
        ref = power["reference"].iloc[0]
        lines += [
            "",
            f"Power of the repeats test against **{ref}** (share of {alpha}-level calls, simulated with the spreads "
            "above):",
            "",
            "| recipe | DeLong se vs ref | training sd | 3 repeats: true diff 0 / 0.03 / 0.05 | 5 repeats |",
            "|---|---|---|---|---|",
        ]
        for _, r in power.iterrows():
            cells = [" / ".join(f"{r[f'k{k}_d{d:g}']:.2f}" for d in (0.0, 0.03, 0.05)) for k in (3, 5)]
            lines.append(f"| {r['recipe']} | {r['delong_se']:.4f} | {r['training_sd']:.4f} | {cells[0]} | {cells[1]} |")
        lines += [
            "",
            "Repeat k's difference = true difference + one molecule-sampling draw shared by the repeats (sd: DeLong's "
            "se of this recipe against the reference) + training noise per repeat (training sd: both recipes' "
            "measured sds combined); a call is p < alpha for that one row (Holm over a table's rows asks more). "
            "5 repeats: the same three true differences.",
        ]
    return "\n".join(lines) + "\n"


def write_aa(
    paths: Iterable[Path | str], out_dir: Path | str, reference: str | None = "ecfp_rf", margin: float = 0.02,
    alpha: float = 0.05, strict: bool = False, n_sim: int = 2000,
) -> dict[str, pd.DataFrame]:  # fmt: skip
    """aa.md and aa_{spread,pairs,splits,power}.csv in ``out_dir`` for the runs below ``paths`` (``n_sim``: simulated
    comparisons per power cell)."""
    from delbind.io import atomic_write, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = study(recipe_runs(paths, strict), reference, margin, alpha, n_sim=n_sim)
    write_text(out / "aa.md", aa_markdown(result, margin, alpha))
    for name, frame in result.items():
        with atomic_write(out / f"aa_{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    return result
