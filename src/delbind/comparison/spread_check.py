"""Defaults against training noise: does a choice's margin on CV val exceed what retraining alone moves it?

Every default of docs/defaults.md was chosen on GSK3B's cross-validated val hard AU-PRC with one init seed per
candidate. The A/A study (``comparison/aa.py``) measured, per recipe, how far that figure moves between init seeds on
the same folds (its sd over seeds). Two candidates of one seed each differ by training noise alone with sd
sqrt(sd_a^2 + sd_b^2), so a margin under ``Z`` times that is inside the seed spread: CV val did not separate them, and
the choice between them is the incumbent's by rule, not by evidence. Every row of a comparison is checked against
its top row.

A spread is measured per arm on one trunk. A row without its own borrows, in this order, its arm's spread on another
trunk (ANNalog's rows, rxnfp's A/A study), then the arm ``PROXY`` names (the measured recipe nearest in what trains),
and the table says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from delbind.comparison.runs import arm_of
from delbind.errors import DataError

Z = 1.96  # a two-sided 95% band for the difference of two fits of one recipe
METRIC = "val_hard_auprc"  # what defaults are chosen on (mean over the folds)
# arm without a measured seed spread -> the measured arm whose spread it borrows (nearest in what trains)
PROXY = {"partial": "finetune", "lora": "finetune", "contrastive": "lp_ft", "lp_ft_ecfp": "lp_ft"}


def recipe_of(label: str) -> str:
    """``lp_ft (rxnfp_bert, mean pooling, lr3e-4)`` -> ``lp_ft (rxnfp_bert)``: the arm on its trunk, what a spread is
    measured for."""
    arm, _, rest = label.partition(" (")
    return f"{arm} ({rest.split(',')[0].rstrip(')')})" if rest else arm


def arm_spreads(spread: pd.DataFrame) -> dict[str, float]:
    """Per arm on its trunk (``recipe_of``), the sd over seeds of its CV val figure; one measured under several
    recipes (checkpoint rules) keeps the largest, so no band is drawn narrower than a measured one."""
    if f"{METRIC}_sd" not in spread:
        raise DataError(f"the A/A spread table has no {METRIC}_sd column: redraw it with scripts/aa.py")
    sds = spread.assign(key=spread["recipe"].map(recipe_of)).groupby("key")[f"{METRIC}_sd"].max()
    return {k: float(v) for k, v in sds.items() if np.isfinite(v)}


def _sd(label: str, spreads: dict[str, float]) -> tuple[float, str]:
    """The row's sd and whose it is: its own arm on its trunk, else that arm on another trunk, else its proxy's."""
    own, arm = recipe_of(label), arm_of(label)
    for candidate in (arm, PROXY.get(arm)):
        keys = sorted(k for k in spreads if arm_of(k) == candidate)
        if keys:
            key = own if own in keys else keys[0]
            return spreads[key], key
    raise DataError(f"no seed spread measured for {arm} and no proxy named for it (comparison/spread_check.py PROXY)")


def check(spread: pd.DataFrame, comparisons: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per row of each comparison (name -> its comparison.csv), ranked on CV val: how far below the top row
    it is, the band training noise alone spans between the two, and whether the margin is outside it. The top row's
    own line has no margin."""
    spreads = arm_spreads(spread)
    rows = []
    for name, table in comparisons.items():
        ranked = table.dropna(subset=[METRIC]).sort_values(METRIC, ascending=False)
        if len(ranked) < 2:
            raise DataError(f"{name}: a choice needs two rows with {METRIC}; it has {len(ranked)}")
        top = ranked.iloc[0]
        sd_top, _ = _sd(top["arm"], spreads)
        for rank, (_, row) in enumerate(ranked.iterrows()):
            sd_row, source = _sd(row["arm"], spreads)
            line = {"comparison": name, "row": row["arm"], "val": row[METRIC], "sd": sd_row, "spread_of": source}
            if rank:
                margin, band = top[METRIC] - row[METRIC], Z * np.hypot(sd_top, sd_row)
                line |= {"below_top": margin, "band": band, "separated": bool(margin >= band)}
            rows.append(line)
    return pd.DataFrame(rows)


def to_markdown(result: pd.DataFrame, spread_source: str) -> str:
    """check.md: each comparison's rows on CV val, each against its top row and the band of training noise."""
    lines = [
        "| comparison | row | CV val | below the top | noise band | separated? |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in result.iterrows():
        if pd.isna(r.get("below_top")):
            lines.append(f"| {r['comparison']} | **{r['row']}** | {r['val']:.3f} | top | | |")
            continue
        verdict = "yes" if r["separated"] else "**no**"
        lines.append(f"| | {r['row']} | {r['val']:.3f} | {r['below_top']:.3f} | {r['band']:.3f} | {verdict} |")
    borrowed = sorted(
        {f"{recipe_of(r)} <- {s}" for r, s in zip(result["row"], result["spread_of"]) if recipe_of(r) != s}
    )
    lines += [
        "",
        f"CV val: {METRIC} (mean over the 5 folds), one init seed per row, as each default was chosen. Noise band: "
        f"{Z} x sqrt(sd_top^2 + sd_row^2), with each row's sd the spread over init seeds of the same figure for its "
        f"arm on its trunk, measured by the A/A study ({spread_source}). Separated? **no**: the margin below the top "
        "row is inside the band, what retraining alone moves, so CV val did not separate the two rows. "
        + (f"Rows without a measured spread of their own borrow one ({'; '.join(borrowed)}). " if borrowed else "")
        + "An arm measured under two checkpoint rules keeps the larger sd.",
    ]
    return "\n".join(lines) + "\n"


def load(spread_csv: Path | str, comparison_dirs: list[Path | str]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The A/A spread table and each results dir's comparison.csv, named by the dir."""
    comparisons = {}
    for d in comparison_dirs:
        path = Path(d) / "comparison.csv"
        if not path.is_file():
            raise DataError(f"{d} has no comparison.csv: give results dirs of comparisons (results/defaults_*)")
        comparisons[Path(d).name] = pd.read_csv(path)
    return pd.read_csv(spread_csv), comparisons
