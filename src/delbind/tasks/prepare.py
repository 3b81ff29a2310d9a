"""Build and write the labelled, split dataset without training (``python scripts/prepare_data.py``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from delbind.data import build_dataset, external_sets, write_dataset


def run(cfg: DictConfig) -> Path:
    """Write ``<run dir>/dataset/`` (splits, external sets, stats.json); print the counts; return the folder."""
    out = Path(cfg.paths.output_dir) / "dataset"
    df, stats = build_dataset(cfg.data, cfg.seed)
    external = external_sets(cfg.data, stats)
    write_dataset(out, df, stats, external)
    counts = df.groupby(["split", "kind"]).size().unstack(fill_value=0)
    print(f"\n{counts}\nexternal sets: {sorted(external) or 'none'}\ndataset: {out}")
    return out
