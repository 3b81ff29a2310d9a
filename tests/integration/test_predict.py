"""scripts/predict.py's task: a trained arm scores a file as its own run scored the same molecules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from delbind.cli import task_config
from delbind.ensemble import write_ensembles
from delbind.errors import ConfigError, DataError, ModelLoadError, RunDirExistsError
from delbind.tasks import predict, train
from tests.helpers import ROOT, SMOKE, compose_cfg

INVALID = "C1CC(("


def predict_cfg(model: Path, input: Path, output: Path, *overrides: str):
    argv = [f"model={model}", f"input={input}", f"output={output}", *overrides]
    return task_config(ROOT / "conf" / "predict.yaml", argv, "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A fine-tuned and a frozen (standardized head) tiny transformer and an ECFP4 random forest, on the smoke data;
    a second frozen head on the same split (another seed: with ``frozen``, a seed ensemble); a fine-tuned one
    evaluated with test-time augmentation (a high learning rate spreads its scores apart)."""
    root = tmp_path_factory.mktemp("runs")
    dirs = {}
    arms = {"finetune": [], "frozen": ["mode=frozen"], "ecfp_rf": ["baseline=ecfp_rf"],
            "frozen_s1": ["mode=frozen", "seed=1", "data_seed=0"],
            "finetune_tta": ["augment.test_n=2", "trainer.learning_rate=1e-3"]}  # fmt: skip
    for arm, overrides in arms.items():
        dirs[arm] = root / arm
        train.run(compose_cfg(dirs[arm], [*SMOKE, *overrides]))
    return dirs


def library(run_dir: Path, tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """The run's test molecules as a library file with id columns, an invalid SMILES in the middle."""
    preds = pd.read_parquet(run_dir / "predictions.parquet").query("eval_set in ['test_easy', 'test_hard']")
    preds = preds.drop_duplicates("smiles").reset_index(drop=True)
    lib = pd.DataFrame({"compound_id": [f"DEL-{i:05d}" for i in range(len(preds))], "SMILES": preds["smiles"],
                        "plate": "P1", "expected": preds["score"]})  # fmt: skip
    lib = pd.concat([lib.iloc[:5], pd.DataFrame([{"compound_id": "DEL-bad", "SMILES": INVALID, "plate": "P2"}]),
                     lib.iloc[5:]], ignore_index=True)  # fmt: skip
    path = tmp_path / "library.csv"
    lib.drop(columns="expected").to_csv(path, index=False)
    return lib, path


@pytest.mark.parametrize("arm", ["finetune", "frozen", "ecfp_rf"])
def test_predict_scores_as_the_run_keeps_ids_and_order_and_counts_invalid(runs, tmp_path, arm):
    lib, path = library(runs[arm], tmp_path)
    out = tmp_path / "scores.parquet"
    summary = predict.run(predict_cfg(runs[arm], path, out, "chunk_rows=7"))
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["SMILES", "compound_id", "plate", "score"]
    assert scored["compound_id"].tolist() == lib["compound_id"].tolist()  # every row, in input order
    bad = scored["compound_id"] == "DEL-bad"
    assert scored.loc[bad, "score"].isna().all() and scored.loc[~bad, "score"].notna().all()
    pd.testing.assert_series_equal(
        scored.loc[~bad, "score"].reset_index(drop=True), lib.loc[~bad, "expected"].reset_index(drop=True),
        check_names=False, atol=1e-5, rtol=0,
    )  # fmt: skip
    assert summary["rows"] == len(lib) and summary["invalid_smiles"] == 1 and summary["chunks"] > 2
    assert json.loads(out.with_name("scores.parquet.summary.json").read_text())["rows"] == len(lib)
    assert not out.with_name("scores.parquet.parts").exists()  # merged, then removed


def test_a_seed_ensemble_scores_the_mean_of_its_members(runs, tmp_path):
    [ensemble] = write_ensembles([runs["frozen"], runs["frozen_s1"]], tmp_path / "ensembles")
    lib, path = library(ensemble, tmp_path)  # expected: the ensemble's own test scores, the members' mean
    out = tmp_path / "scores.parquet"
    summary = predict.run(predict_cfg(ensemble, path, out))
    scored, ok = pd.read_parquet(out), lib["compound_id"] != "DEL-bad"
    pd.testing.assert_series_equal(
        scored.loc[ok, "score"].reset_index(drop=True), lib.loc[ok, "expected"].reset_index(drop=True),
        check_names=False, atol=1e-5, rtol=0,
    )  # fmt: skip
    assert summary["scorer"] == "ensemble" and len(summary["ensemble_members"]) == 2
    metrics = json.loads((ensemble / "metrics.json").read_text())
    (ensemble / "metrics.json").write_text(json.dumps(metrics | {"ensemble_members": [str(tmp_path / "gone")]}))
    with pytest.raises(ModelLoadError, match="member run dirs are gone"):
        predict.run(predict_cfg(ensemble, path, tmp_path / "again.parquet"))


def test_a_run_evaluated_with_tta_scores_a_library_as_it_scored_its_test_set(runs, tmp_path):
    lib, path = library(runs["finetune_tta"], tmp_path)  # expected: the run's TTA test scores
    ok = lib["compound_id"] != "DEL-bad"
    expected = lib.loc[ok, "expected"].reset_index(drop=True)
    scored = {}
    for n in ("null", "0", "4"):  # null: the run's own test_n (2)
        out = tmp_path / f"scores_tta{n}.parquet"
        scored[n] = predict.run(predict_cfg(runs["finetune_tta"], path, out, f"tta_n={n}", "chunk_rows=7"))
        scored[n]["scores"] = pd.read_parquet(out).loc[ok, "score"].reset_index(drop=True)
    pd.testing.assert_series_equal(scored["null"]["scores"], expected, check_names=False, atol=1e-5, rtol=0)
    assert scored["null"]["tta_n"] == 2 and scored["0"]["tta_n"] == 0 and scored["4"]["tta_n"] == 4
    for n in ("0", "4"):  # canonical only, or other views: other scores
        assert (scored[n]["scores"] - expected).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="tta_n=1: .* is a baseline"):
        predict.run(predict_cfg(runs["ecfp_rf"], path, tmp_path / "rf.parquet", "tta_n=1"))


def test_resume_after_a_kill_gives_the_uninterrupted_output(runs, tmp_path, monkeypatch):
    _, path = library(runs["finetune"], tmp_path)
    whole = tmp_path / "whole.csv.gz"
    predict.run(predict_cfg(runs["finetune"], path, whole, "chunk_rows=5"))

    real, calls = predict.score_frame, []

    def killed_after_two_chunks(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a kill looks like from inside: the job stops between parts
        calls.append(1)
        return real(*args, **kwargs)

    out = tmp_path / "scores.csv.gz"
    monkeypatch.setattr(predict, "score_frame", killed_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        predict.run(predict_cfg(runs["finetune"], path, out, "chunk_rows=5"))
    monkeypatch.setattr(predict, "score_frame", real)
    parts = sorted(out.with_name("scores.csv.gz.parts").glob("part-*.parquet"))
    assert len(parts) == 2 and not out.exists()
    with pytest.raises(RunDirExistsError, match="resume=true"):
        predict.run(predict_cfg(runs["finetune"], path, out, "chunk_rows=5"))
    with pytest.raises(DataError, match="chunk_rows"):  # parts of another chunking are never mixed in
        predict.run(predict_cfg(runs["finetune"], path, out, "chunk_rows=6", "resume=true"))
    summary = predict.run(predict_cfg(runs["finetune"], path, out, "chunk_rows=5", "resume=true"))
    assert summary["scored_by_this_job"] == summary["rows"] - 10  # the two kept parts were not scored again
    with gzip.open(whole, "rt") as a, gzip.open(out, "rt") as b:
        assert a.read() == b.read()
    with pytest.raises(RunDirExistsError, match="exists"):  # no job overwrites another's output
        predict.run(predict_cfg(runs["finetune"], path, out))


def test_every_input_format_gives_the_same_scores(runs, tmp_path):
    lib, path = library(runs["ecfp_rf"], tmp_path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.to_parquet(tmp_path / "lib.parquet", index=False)
    frame.to_csv(tmp_path / "lib.tsv.gz", sep="\t", index=False)
    (tmp_path / "lib.smi").write_text("".join(f"{s} {i}\n" for s, i in zip(frame["SMILES"], frame["compound_id"])))
    scores = {}
    for name in ("lib.parquet", "lib.tsv.gz", "lib.smi"):
        out = tmp_path / f"{name}.scores.parquet"
        predict.run(predict_cfg(runs["ecfp_rf"], tmp_path / name, out, "chunk_rows=4"))
        scores[name] = pd.read_parquet(out)
    assert scores["lib.smi"]["name"].tolist() == lib["compound_id"].tolist()
    for result in scores.values():
        pd.testing.assert_series_equal(result["score"], scores["lib.parquet"]["score"])


def test_bad_input_is_a_clear_error_before_any_scoring(runs, tmp_path):
    _, path = library(runs["ecfp_rf"], tmp_path)
    out = tmp_path / "scores.parquet"
    with pytest.raises(DataError, match="does not exist"):
        predict.run(predict_cfg(runs["ecfp_rf"], tmp_path / "nope.csv", out))
    with pytest.raises(DataError, match=r"\['vendor'\] not found"):
        predict.run(predict_cfg(runs["ecfp_rf"], path, out, "id_columns=[vendor]"))
    with pytest.raises(DataError, match="name it .parquet"):
        predict.run(predict_cfg(runs["ecfp_rf"], path, tmp_path / "scores.xlsx"))
    (tmp_path / "no_smiles.csv").write_text("id,structure\n1,CCO\n")
    with pytest.raises(DataError, match="smiles_column"):
        predict.run(predict_cfg(runs["ecfp_rf"], tmp_path / "no_smiles.csv", out))


def test_two_nodes_over_loopback_write_the_one_process_output_byte_for_byte(runs, tmp_path):
    """Scoring across nodes: two torchrun launches, one per "node" (--nnodes 2, a rendezvous on 127.0.0.1, gloo on
    CPU), on one shared file system: each scores every other chunk, rank 0 merges once both ranks' parts are written."""
    import socket
    import subprocess
    import sys

    _, path = library(runs["finetune"], tmp_path)
    one = tmp_path / "one.parquet"
    predict.run(predict_cfg(runs["finetune"], path, one, "chunk_rows=7"))
    two = tmp_path / "two.parquet"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = Path(sys.executable).parent / "torchrun"
    node = [str(torchrun), "--nnodes", "2", "--nproc_per_node", "1", "--master_addr", "127.0.0.1",
            "--master_port", str(port)]  # fmt: skip
    job = [str(ROOT / "scripts" / "predict.py"), f"model={runs['finetune']}", f"input={path}", f"output={two}",
           "chunk_rows=7", "threads=1"]  # fmt: skip
    procs = [
        subprocess.Popen(
            [*node, "--node_rank", str(rank), *job], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    assert two.read_bytes() == one.read_bytes()  # the same file, byte for byte
    summary = json.loads(two.with_name("two.parquet.summary.json").read_text())
    assert summary["world_size"] == 2 and 0 < summary["scored_by_this_job"] < summary["rows"]  # rank 0: its share
