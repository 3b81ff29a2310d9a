"""What the report reads: the runs, their summary and paired verdicts (delbind.comparison), and per run its config,
history and scores."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from delbind.comparison import Comparison, compare, paired_verdicts
from delbind.rundirs import log_history, natural


@dataclass
class Report:
    """Every run below the given dirs (one row per metrics.json) and their comparison: the per-row summary and the
    paired verdicts against ``reference`` (None: the val-best row)."""

    dirs: list[str]
    comparison: Comparison
    reference: str | None = None  # as asked: None = the val-best row
    labels: bool = True  # False: rows by recipe alone (comparison.runs.read_runs)
    _pairs: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _logged: pd.DataFrame | None = field(default=None, repr=False)  # logged_runs, read once

    @property
    def runs(self) -> pd.DataFrame:
        return self.comparison.runs

    @property
    def shown_dirs(self) -> list[str]:
        """The run dirs as a reader is shown them: relative to the working dir when inside it (results/...), else
        as given; the notebook writes its own, relative to its folder."""
        here = Path.cwd().resolve()
        return [str(Path(d).relative_to(here)) if Path(d).is_relative_to(here) else d for d in self.dirs]

    @property
    def summary(self) -> pd.DataFrame:
        return self.comparison.summary

    @property
    def margin(self) -> float:
        return self.comparison.margin

    @property
    def alpha(self) -> float:
        return self.comparison.alpha

    @property
    def pooled(self) -> dict[tuple[str, str], pd.DataFrame]:
        """(row, repeat) -> the repeat's pooled out-of-fold test predictions, as the comparison read them."""
        return self.comparison.pooled

    def pairs_against(self, reference: str) -> pd.DataFrame:
        """Every other row paired against the row ``reference`` (the comparison's verdict table when it is that
        table's reference; else computed the same way, with the same margin and alpha)."""
        pairs = self.comparison.pairs
        if not pairs.empty and pairs["reference"].iloc[0] == reference:
            return pairs
        if reference not in self._pairs:
            self._pairs[reference] = paired_verdicts(
                self.runs, self.summary, self.pooled, reference, self.margin, self.alpha
            )
        return self._pairs[reference]

    def matched_unit(self) -> tuple[str, str] | None:
        """The first (repeat, unit), in natural order, that every arm ran; None when no unit is shared by all."""
        units = [set(zip(g["repeat"], g["unit"])) for _, g in self.runs.groupby("arm", sort=False)]
        shared = set.intersection(*units) if units else set()
        return min(shared, key=lambda u: (natural(u[0]), natural(u[1]))) if shared else None

    def first_runs(self) -> pd.DataFrame:
        """One run per arm, the one whose curves are drawn; arms in the table's order.

        Every arm's run is of ONE matched (repeat, unit): the first (repeat, fold-or-split), in natural order,
        that every arm ran, so all panels are drawn on the same test molecules (of an old re-split run several
        init seeds share a unit: the lowest seed is drawn). Only when no (repeat, unit) is shared by every arm
        (say k-fold runs beside old re-split runs) does each arm fall back to its own first run, sorted by repeat,
        unit and seed; its panels are then on different molecules, and ``matched_unit()`` is None.
        """
        runs, match = self.runs, self.matched_unit()
        if match is not None:
            runs = runs[(runs["repeat"] == match[0]) & (runs["unit"] == match[1])]
        order = sorted(
            runs.index, key=lambda i: (natural(runs.at[i, "repeat"]), natural(runs.at[i, "unit"]), runs.at[i, "seed"])
        )
        first = runs.loc[order].groupby("arm", sort=False).head(1).set_index("arm")
        return first.loc[self.summary["arm"]]

    def logged_runs(self) -> pd.DataFrame:
        """One run per arm whose Trainer log the loss curves draw: its run of the matched fold (``first_runs``)
        when that one kept its log, else the arm's first run, in natural order, that did (a repeat kept after logs
        were); arms without any log are left out. Read once per report (the setup table, the curves and their note
        all ask)."""
        if self._logged is not None:
            return self._logged
        first, chosen = self.first_runs(), {}
        for arm, run in first.iterrows():
            if log_history(run["run_dir"]):
                chosen[arm] = run
                continue
            own = self.runs[self.runs["arm"] == arm]
            for i in sorted(own.index, key=lambda i: (natural(own.at[i, "repeat"]), natural(own.at[i, "unit"]))):
                if log_history(own.at[i, "run_dir"]):
                    chosen[arm] = own.loc[i]
                    break
        self._logged = pd.DataFrame(chosen.values(), index=pd.Index(list(chosen), name="arm"))
        return self._logged


def _plain(value: Any) -> str:
    """A seed or fold as written: 2, not the 2.0 a column with gaps (old runs loaded beside) makes of it."""
    return re.sub(r"(\d+)\.0\b", r"\1", str(value))


def short_labels(arms: list[str]) -> tuple[dict[str, str], str]:
    """Row labels without the parts most rows share (``frozen (rxnfp_bert, mean pooling)`` -> ``frozen``), and those
    shared parts, said once: a chart names its points by what tells them apart."""
    parts = {arm: (m.group(1), m.group(2).split(", ")) if (m := re.fullmatch(r"(.+?) \((.*)\)", arm)) else (arm, [])
             for arm in arms}  # fmt: skip
    counts = Counter(part for _, rest in parts.values() for part in dict.fromkeys(rest))  # in order of appearance
    common = [part for part, n in counts.items() if n > len(arms) / 2 and len(arms) > 1]
    short = {}
    for arm, (name, rest) in parts.items():
        kept = [part for part in rest if part not in common]
        short[arm] = f"{name} ({', '.join(kept)})" if kept else name
    if len(set(short.values())) < len(short):  # shortening would merge two rows: keep the full labels
        return {arm: arm for arm in arms}, ""
    return short, ", ".join(common)


def where(run: pd.Series) -> str:
    """Which test set a run scored: its fold and repeat (data_seed/seed) or, for old runs, its split seed."""
    unit, repeat = _plain(run["unit"]), _plain(run["repeat"])
    if run.get("design") == "resplit":
        return f"split seed {unit}"
    if run.get("design") == "given":
        return f"the given split, repeat {repeat}"
    return f"fold {unit}, repeat {repeat}"


def load_report(
    paths: list[str | Path],
    reference: str | None = None,
    margin: float = 0.02,
    alpha: float = 0.05,
    strict: bool = False,
    labels: bool = True,
) -> Report:
    """The runs found at or below ``paths``, compared (delbind.comparison.compare) against ``reference``; an
    unreadable or unfinished run is left out and listed (``strict``: an error); ``labels=False``: rows by recipe
    alone."""
    comparison = compare(paths, reference, margin, alpha, strict=strict, labels=labels)
    return Report([str(p) for p in paths], comparison, reference, labels)


def predictions(run_dir: str | Path) -> pd.DataFrame:
    """predictions.parquet: smiles, label, kind, eval_set, score."""
    return pd.read_parquet(Path(run_dir) / "predictions.parquet")


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config (.hydra/config.yaml, as Hydra saved it: interpolations unresolved), resolved where it can be
    (``mode.lora.target_modules: ${model.attention_modules}``); a value that needs Hydra's runtime (``${hydra:...}``)
    stays as written. {} when absent."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    cfg = OmegaConf.load(path)
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001  (any resolver missing outside the run: resolve value by value instead)
        return _resolved_where_possible(cfg, OmegaConf.to_container(cfg, resolve=False), "")


def _resolved_where_possible(cfg: Any, raw: Any, key: str) -> Any:
    """``raw`` (the unresolved container at ``key``), each interpolation that resolves here replaced by its value."""
    if isinstance(raw, dict):
        return {k: _resolved_where_possible(cfg, v, f"{key}.{k}" if key else str(k)) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_resolved_where_possible(cfg, v, f"{key}[{i}]") for i, v in enumerate(raw)]
    if isinstance(raw, str) and "${" in raw:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)  # None: it cannot resolve here
        if value is None:
            return raw
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return raw


def what_trains(cfg: dict[str, Any]) -> str:
    """The arm's recipe in a few words, from its config."""
    baseline = cfg.get("baseline")
    if baseline:
        est = baseline.get("estimator", {})
        name = str(est.get("_target_", "?")).rsplit(".", 1)[-1]
        extra = f", {est['n_estimators']} trees" if "n_estimators" in est else ""
        return f"{baseline.get('features')} features + {name}{extra}"
    mode = cfg.get("mode", {})
    if mode.get("lora"):
        return f"LoRA r={mode['lora'].get('r')} on {', '.join(mode['lora'].get('target_modules', []))} + head"
    if mode.get("linear_probe"):
        return "head on frozen embeddings, then every weight"
    layers = mode.get("trainable_layers")
    if layers == 0 and not mode.get("train_embeddings"):
        return "head only (trunk frozen)"
    trunk = "all layers" if layers is None else f"top {layers} layers"
    return f"{trunk}{' + embeddings' if mode.get('train_embeddings') else ''} + head"


def what_trains_recorded(run: pd.Series) -> str:
    """The arm's recipe from what its metrics.json recorded (a kept run without its config)."""
    if pd.notna(run.get("fit_s")):
        return "a classical model on fixed features (no trunk)"
    if pd.notna(run.get("probe_runtime_s")):
        return "head on frozen embeddings, then every weight"
    trainable, total = run.get("trainable_params"), run.get("total_params")
    if pd.isna(trainable) or pd.isna(total):
        return "n/a"
    if trainable >= total:
        return "all layers + head"
    return "head only (trunk frozen)" if trainable < 0.01 * total else "part of the trunk + head"


def _recorded(cfg_value: Any, run: pd.Series, key: str) -> Any:
    """The config's value, else what metrics.json recorded, else n/a."""
    if cfg_value is not None:
        return cfg_value
    value = run.get(key)
    return "n/a" if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def setup_rows(report: Report) -> pd.DataFrame:
    """Each arm's setup: model, data, recipe, learning rate, batch, epochs run, trainable / total parameters; read
    from the run whose loss curve is drawn where there is one (kept with its config), else the matched-fold run."""
    rows, logged = [], report.logged_runs()
    for arm, run in report.first_runs().iterrows():
        run = logged.loc[arm] if arm in logged.index else run
        cfg = run_config(run["run_dir"])
        trainer = cfg.get("trainer", {}) if not cfg.get("baseline") else {}
        data = cfg.get("data", {})
        params = " / ".join(_number(run.get(k)) for k in ("trainable_params", "total_params"))
        rows.append(
            {
                "arm": arm,
                "seeds": int(report.runs.loc[report.runs["arm"] == arm, "seed"].nunique()),
                "data": f"{run.get('data', data.get('name'))} ({_recorded(data.get('split'), run, 'split')} split)",
                "what trains": what_trains(cfg) if cfg else what_trains_recorded(run),
                "learning rate": _recorded(trainer.get("learning_rate"), run, "learning_rate"),
                "batch": _recorded(trainer.get("per_device_train_batch_size"), run, "batch_size"),
                "epochs run": _number(run.get("epochs")),
                "trainable / total params": params,
            }
        )
    return pd.DataFrame(rows)


def _number(value: Any) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:,.0f}" if float(value) >= 10 else f"{value:g}"


def heldout_kd(run_dir: str | Path) -> pd.DataFrame:
    """Held-out (KinDEL) scores with their Kd (nM): predictions' heldout_* rows joined by position with
    ``dataset/external/<set>.parquet``; empty when the run has none or did not keep the Kd."""
    preds = predictions(run_dir)
    parts = []
    for name, part in preds[preds["eval_set"].str.startswith("heldout_")].groupby("eval_set", sort=False):
        path = Path(run_dir) / "dataset" / "external" / f"{name}.parquet"
        if not path.is_file():
            continue
        ext = pd.read_parquet(path)
        if "kd" not in ext or len(ext) != len(part) or list(ext["smiles"]) != list(part["smiles"]):
            continue  # not the file these scores came from
        parts.append(part.assign(kd=ext["kd"].to_numpy()))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*preds.columns, "kd"])
