"""Score a molecule file of any size with a trained arm (``python scripts/predict.py``).

Input chunk by chunk (memory stays flat as the file grows) -> canonical SMILES (invalid ones get a null score,
counted) -> the arm's scorer (transformers: length-sorted batches by token budget; with the run's test-time
augmentation, if it was evaluated with one) -> one parquet part per chunk
-> the output file, merged in input order and checked row for row against the input. A killed job continues
with ``resume=true``. Under ``accelerate launch`` / ``torchrun`` rank r scores chunks r, r + world, ... and
rank 0 merges.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from delbind import distributed
from delbind.data.chem import canonical_smiles
from delbind.errors import DataError
from delbind.io import write_json
from delbind.profiling import peak_rss_mb
from delbind.scoring.parts import PartStore
from delbind.scoring.readers import open_table
from delbind.scoring.scorers import Scorer, load_scorer
from delbind.threads import set_threads
from delbind.training import resolve_precision

log = logging.getLogger(__name__)
SCORE = "score"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.input`` with the arm in ``cfg.model``; write ``cfg.output`` and ``<output>.summary.json``."""
    threads = set_threads(cfg.threads)
    ids = None if cfg.id_columns is None else list(cfg.id_columns)
    table = open_table(cfg.input, cfg.smiles_column, ids)
    if SCORE in table.id_columns:
        raise DataError(f"{cfg.input} already has a {SCORE!r} column: pass id_columns=[...] without it")
    precision, device = resolve_precision(cfg.precision), distributed.device()
    scorer = load_scorer(cfg.model, precision, device, cfg.batch_tokens, cfg.quantize, cfg.tta_n)
    output, rank, world = Path(cfg.output), distributed.rank(), distributed.world_size()
    store = PartStore(output)
    if distributed.is_main_process():
        store.claim(_manifest(cfg, table.path, table.smiles_column, table.id_columns), cfg.resume)
    distributed.barrier()  # no rank writes a part before the parts dir is claimed

    chunk_rows: list[int] = []
    scored, scoring_s = 0, 0.0
    with tqdm(total=table.n_rows, unit="mol", desc="scoring", disable=not distributed.is_main_process()) as bar:
        for chunk_id, chunk in enumerate(table.chunks(cfg.chunk_rows)):
            chunk_rows.append(len(chunk))
            if chunk_id % world == rank and not store.done(chunk_id, len(chunk)):
                start = time.perf_counter()
                store.write(chunk_id, score_frame(scorer, chunk, table.smiles_column))
                scoring_s += time.perf_counter() - start
                scored += len(chunk)
                bar.set_postfix(scored_mol_per_s=f"{scored / scoring_s:.0f}")
            bar.update(len(chunk))
    if not chunk_rows:
        raise DataError(f"{cfg.input} holds no rows to score")
    distributed.barrier()  # every rank's parts are on disk
    summary: dict[str, Any] = {}
    if distributed.is_main_process():
        counts = store.merge(chunk_rows, SCORE)
        summary = {
            "input": str(table.path), "output": str(output), "model": str(cfg.model), "scorer": scorer.kind,
            **scorer.facts, "rows": counts["rows"], "invalid_smiles": counts["null_scores"],
            "scored_by_this_job": scored, "scoring_s": scoring_s,
            "mol_per_s": scored / scoring_s if scoring_s else None, "chunks": len(chunk_rows),
            "world_size": world, "threads": threads, "peak_rss_mb": peak_rss_mb(),
        }  # fmt: skip
        write_json(output.with_name(output.name + ".summary.json"), summary)
        log.info("%s: %d rows, %d invalid SMILES (null score)", output, counts["rows"], counts["null_scores"])
    return summary


def score_frame(scorer: Scorer, frame: pd.DataFrame, smiles_column: str) -> pd.DataFrame:
    """``frame`` with a ``score`` column: P(binder) of each row's canonical SMILES, null where RDKit cannot parse it."""
    canonical = canonical_smiles(frame[smiles_column].tolist())
    valid = np.array([s is not None for s in canonical])
    scores = np.full(len(frame), np.nan)
    if valid.any():
        scores[valid] = scorer.score([s for s in canonical if s is not None])
    return frame.assign(**{SCORE: scores})


def _manifest(cfg: DictConfig, path: Path, smiles_column: str, id_columns: list[str]) -> dict[str, Any]:
    """What the parts depend on: resume refuses parts made from another input, model or chunking."""
    stat = path.stat()
    return {
        "input": str(path.resolve()), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        "model": str(Path(cfg.model).resolve()), "chunk_rows": cfg.chunk_rows, "smiles_column": smiles_column,
        "id_columns": id_columns, "quantize": cfg.quantize, "precision": OmegaConf.select(cfg, "precision"),
        "tta_n": OmegaConf.select(cfg, "tta_n"),
    }  # fmt: skip
