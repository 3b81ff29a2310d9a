"""A panel of targets: the same arms cross-validated on several kinases -> one table of pooled hard-set figures and
verdicts against a reference arm per target, and the tally across the reporting targets.

The development target (where defaults are chosen) is shown apart and never counted: a tally over targets on which
nothing was chosen is the out-of-sample answer to "does this arm beat the reference on kinases in general?".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from delbind.comparison.runs import arm_of, load_runs
from delbind.comparison.verdicts import find_twins, resolve_arm
from delbind.errors import NoRunsError
from delbind.io import atomic_write, write_text

VERDICTS = ("better", "equivalent", "worse", "can't tell")


def panel(
    paths: Iterable[Path | str],
    development: str,
    reference: str,
    margin: float = 0.02,
    alpha: float = 0.05,
    strict: bool = False,
    twins: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per target x arm rows, tally per arm over the reporting targets) for the runs below ``paths``; ``strict``:
    an unreadable or unfinished run is an error (else left out, one line each). ``twins`` (a model name): each row
    of another trunk is paired with the same recipe on that trunk instead of with ``reference``; the table then holds
    the paired rows and their twins only."""
    from delbind.comparison import compare  # the package's entry point; this module is one of its parts

    runs = load_runs(paths, per_target=False, strict=strict)  # rows are split by target below
    if "target" not in runs or runs["target"].isna().all():
        raise NoRunsError(f"no run below {[str(p) for p in paths]} records a data.target: not a panel")
    rows = []
    for target, group in runs.groupby("target", sort=False):
        if twins and not find_twins(group, group["arm"].unique(), twins):
            continue  # no row of this target has a twin (one trunk ran alone): nothing to pair
        result = compare(group.reset_index(drop=True), reference=None if twins else reference, margin=margin,
                         alpha=alpha, twins=twins)  # fmt: skip
        pairs = result.pairs.set_index("arm") if not result.pairs.empty else pd.DataFrame()
        summary = result.summary
        if twins:  # the paired rows and their twins; each row's reference is its twin (a twin's, itself)
            summary = summary[summary["arm"].isin(set(pairs.index) | set(pairs["reference"]))]
            refs = {arm: pairs["reference"].get(arm, arm) for arm in summary["arm"]}
        else:
            refs = dict.fromkeys(summary["arm"], resolve_arm(summary, reference))
        for _, r in summary.iterrows():
            ref = refs[r["arm"]]
            row: dict[str, Any] = {"target": target, "role": "development" if target == development else "reporting"}
            row |= {k: r[k] for k in ("arm", "design", "n_units", "val_hard_auprc", "test_hard_auroc",
                                      "test_hard_auroc_lo", "test_hard_auroc_hi", "test_hard_auprc")}  # fmt: skip
            row |= {k: r.get(k, np.nan) for k in ("n_test_hard_binders", "n_test_hard_negatives")}
            row |= {"reference": ref, "resolvable": result.resolvable, "repeats": int(r["n_repeats"]), "twins": twins}
            if r["arm"] in pairs.index:
                p = pairs.loc[r["arm"]]
                row |= {k: p[f"test_hard_auroc_{k}"] for k in ("diff", "lo", "hi", "se", "p_holm", "verdict")}
                row |= {"scope": p["scope"], "n_repeats": p["n_repeats"]}
            rows.append(row)
    if not rows:
        raise NoRunsError(f"no target below {[str(p) for p in paths]} has a row with a twin on {twins!r} (the same "
                          "recipe on that trunk)")  # fmt: skip
    table = pd.DataFrame(rows)
    return table, tally(table, alpha)


def tally(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per arm over the reporting targets: how many verdicts of each kind, and the mean hard-AUROC difference with a
    (1 - alpha) normal interval (targets are independent data sets: the variances add)."""
    reporting = table[(table["role"] == "reporting") & table.get("verdict", pd.Series(dtype=object)).notna()]
    out = []
    for arm, group in reporting.groupby("arm", sort=False):
        row: dict[str, Any] = {"arm": arm, "targets": len(group)}
        row |= {v: int((group["verdict"] == v).sum()) for v in VERDICTS}
        row["scope"] = "arms" if (group.get("scope", pd.Series("these models")) == "arms").all() else "these models"
        mean, se = group["diff"].mean(), np.sqrt((group["se"] ** 2).sum()) / len(group)
        z = stats.norm.ppf(1 - alpha / 2)
        row |= {"mean_diff": mean, "lo": mean - z * se, "hi": mean + z * se}
        out.append(row)
    return pd.DataFrame(out)


def panel_markdown(table: pd.DataFrame, counts: pd.DataFrame, margin: float, twins: str | None = None) -> str:
    """panel.md: per target the pooled hard figures and verdicts (``twins``: against each row's twin on that model),
    then the tally over the reporting targets."""
    if twins:
        ref = f"its twin on {twins}"
        against = (f"against its twin on **{twins}** (the same arm, pooling and checkpoint rule on that trunk; a "
                   "twin's own row says reference)")  # fmt: skip
    else:
        ref = arm_of(table["reference"].iloc[0])
        against = f"against **{ref}**"
    lines = [
        f"Per target: pooled out-of-fold hard AUROC [95% CI] / hard AU-PRC, and the verdict {against} "
        f"(margin {margin}; Holm over the arms of a target). The development target chooses defaults; it is "
        "shown, never counted.",
        "",
        "| target | role | arm | repeats | hard set | hard AUROC | hard AU-PRC | - ref [95% CI] | p (Holm) | verdict "
        "| resolves |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        size = (
            "n/a"
            if pd.isna(r["n_test_hard_binders"])
            else f"{r['n_test_hard_binders']:.0f} / {r['n_test_hard_negatives']:.0f}"
        )
        auroc = f"{r['test_hard_auroc']:.3f}" + (
            ""
            if pd.isna(r["test_hard_auroc_lo"])
            else f" [{r['test_hard_auroc_lo']:.3f}, {r['test_hard_auroc_hi']:.3f}]"
        )
        if pd.isna(r.get("diff", np.nan)):
            diff, p, verdict = "reference", "", ""
        else:
            diff = f"{r['diff']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]"
            p = "<0.001" if r["p_holm"] < 0.001 else f"{r['p_holm']:.3f}"
            verdict = f"**{r['verdict']}**" + (" (these models)" if r.get("scope") == "these models" else "")
        cells = [r["target"], r["role"], r["arm"], r.get("repeats", 1), size, auroc, f"{r['test_hard_auprc']:.3f}",
                 diff, p, verdict, f"{r['resolvable']:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "repeats: complete k-fold repeats of the arm on that target (a verdict pairs the repeats both rows ran). "
        "resolves: the hard-AUROC difference this target's comparison finds with 80% power (its tests' own se and df, "
        "Holm over the target's arms). (these models): a verdict from one repeat, about those fitted models; with "
        "repeats the verdict counts training noise and speaks of the arms.",
        "",
    ]
    if not counts.empty:
        lines += [
            f"Across the reporting targets, each arm against {ref} (about: the arms where every target's verdict "
            "came from repeats, else one repeat's fitted models):",
            "",
            "| arm | about | targets | better | equivalent | worse | can't tell | mean hard AUROC - ref [95% CI] |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for _, c in counts.iterrows():
            cells = [
                c["arm"],
                "arms" if c["scope"] == "arms" else "these models",
                c["targets"],
                *(c[v] for v in VERDICTS),
                f"{c['mean_diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]",
            ]
            lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def write_panel(
    paths: Iterable[Path | str],
    out_dir: Path | str,
    development: str,
    reference: str,
    margin: float = 0.02,
    strict: bool = False,
    twins: str | None = None,
) -> pd.DataFrame:
    """panel.md, panel.csv and panel_tally.csv in ``out_dir`` (``twins``: as ``panel``); returns the per target x arm
    table."""
    out_dir = Path(out_dir)
    table, counts = panel(paths, development, reference, margin, strict=strict, twins=twins)
    write_text(out_dir / "panel.md", panel_markdown(table, counts, margin, twins))
    for name, frame in (("panel.csv", table), ("panel_tally.csv", counts)):
        with atomic_write(out_dir / name) as tmp:
            frame.to_csv(tmp, index=False)
    return table
