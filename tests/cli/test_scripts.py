"""The scripts as a user runs them: files written, one clear line on bad input, exit codes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, check_run_dir, write_cv_sweep, write_seed_runs


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "model=tiny", "debug=smoke", *args,
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_cli_finetune_with_wandb_writes_every_file(tmp_path):
    proc = _cli("mode=finetune", "logger=wandb", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    check_run_dir(run_dir, metrics)
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    offline_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    assert "test_hard" in proc.stdout and f"run dir: {run_dir}" in proc.stdout


def test_train_help_says_what_it_does_then_the_config_groups(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}  # transformers prints a line at import for it
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert text.startswith("scripts/train.py: train one binder classifier")
    assert "Main commands:" in text and "experiment=frozen_vs_finetune" in text and "docs/configuration.md" in text
    groups = text.index("== Config groups")
    assert re.search(r"^mode: .*finetune.*frozen", text[groups:], re.M) and text.index("Main commands") < groups
    assert not re.search(r"^seed: 0$", text, re.M)  # not the whole config dump (--cfg job prints it)


def test_cli_bad_input_is_one_line_not_a_traceback(tmp_path):
    proc = _cli("logger=none", "data.target=CHEMBL999", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "DataError: data.target=CHEMBL999 is not in MoleculeACE" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_fp16_on_a_cpu_is_refused_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: fp16 is allowed")
    proc = _cli("logger=none", "precision=fp16", tmp_path=tmp_path / "fp16")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "ConfigError: precision=fp16 needs a CUDA GPU" in out and "Traceback" not in out


def _metrics_only_run(run: Path) -> None:
    """A run dir holding just a metrics.json (a frozen arm at 0.75 [0.6, 0.9] on every test metric)."""
    run.mkdir(parents=True)
    metrics = {"arm": "frozen", "mode": "frozen", "model": "tiny", "seed": 0, "train_runtime_s": 1.0}
    for kind in ("easy", "hard"):
        for metric in ("auroc", "auprc"):
            metrics |= {f"test_{kind}_{metric}": 0.75, f"test_{kind}_{metric}_ci95": [0.6, 0.9]}
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_compare_cli_writes_the_table_and_a_bad_dir_is_one_line(tmp_path):
    _metrics_only_run(tmp_path / "runs" / "0")
    script = str(ROOT / "scripts" / "compare.py")
    ok = subprocess.run([sys.executable, script, str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "| frozen (tiny) | re-split seeds (old runs): 1 x 1 | n/a | 0.750 [0.600, 0.900]" in ok.stdout  # no cv key
    assert (tmp_path / "runs" / "comparison.md").is_file() and (tmp_path / "runs" / "comparison.png").is_file()
    bad = subprocess.run(
        [sys.executable, script, str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert "NoRunsError: no metrics.json under" in bad.stderr and "Traceback" not in bad.stderr
    typo = subprocess.run(
        [sys.executable, script, str(tmp_path / "runs"), "--reference", "ecfp"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "ConfigError: reference 'ecfp' matches no row; give one of: frozen (tiny)" in typo.stderr


def test_compare_cli_pairs_twins_on_another_trunk(tmp_path):
    for model in ("tiny", "other"):
        write_seed_runs(tmp_path / model, "frozen", [0, 1], model=model)
    script = str(ROOT / "scripts" / "compare.py")
    ok = subprocess.run([sys.executable, script, str(tmp_path), "--twins", "tiny", "--out", str(tmp_path / "out")],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "Each row paired against its twin on **tiny**" in ok.stdout
    paired = pd.read_csv(tmp_path / "out" / "comparison_paired.csv")
    assert paired[["arm", "reference"]].values.tolist() == [["frozen (other)", "frozen (tiny)"]]


def test_results_keep_cli_copies_the_fold_runs_and_a_second_keep_is_one_line(tmp_path):
    write_cv_sweep(tmp_path / "sweep", {"frozen": (1.0, 0.7)}, folds=2)
    keep = [
        sys.executable,
        str(ROOT / "scripts" / "results.py"),
        "keep",
        str(tmp_path / "sweep"),
        str(tmp_path / "kept"),
    ]
    ok = subprocess.run(keep, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"kept 2 fold runs under {tmp_path / 'kept'}: fold0, fold1" in ok.stdout
    again = subprocess.run(keep, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "Traceback" not in again.stderr and "never overwrites" in again.stderr
    nothing = subprocess.run([*keep[:3], str(tmp_path / "nothing"), keep[-1]], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert nothing.returncode == 2 and nothing.stderr.startswith("NoRunsError: no metrics.json under")


def test_panel_cli_combines_sweeps_against_its_configured_reference(tmp_path):
    """Two sweeps (the cheap arms, then one arm added later) make one panel, paired against panel.yaml's ecfp_rf
    when no --reference is given; an unfinished run is left out, or refused with --strict."""
    for seed, target in enumerate(["CHEMBL262", "T1"]):
        write_cv_sweep(tmp_path / "first" / target, {"ecfp_rf": (1.0, 0.7)}, n=80, seed=seed, target=target)
        write_cv_sweep(tmp_path / "added" / target, {"strong": (3.0, 0.8)}, n=80, seed=seed, target=target)
    (tmp_path / "added" / "T1" / "unfinished").mkdir()
    (tmp_path / "added" / "T1" / "unfinished" / "metrics.json").write_text("{")
    script, out = str(ROOT / "scripts" / "panel.py"), tmp_path / "panel"
    ok = subprocess.run([sys.executable, script, str(tmp_path / "first"), str(tmp_path / "added"), "--out", str(out)],
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    md = (out / "panel.md").read_text()
    assert "the verdict against **ecfp_rf**" in md and "| T1 | reporting | strong (m) |" in md
    strict = subprocess.run([sys.executable, script, str(tmp_path / "added"), "--strict"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert strict.returncode == 2 and "Traceback" not in strict.stderr and "unfinished" in strict.stderr
    twins = subprocess.run([sys.executable, script, str(tmp_path / "first"), "--twins", "nope", "--out", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert twins.returncode == 2 and "Traceback" not in twins.stderr
    assert "has a row with a twin on 'nope'" in twins.stderr


def test_pretrain_cli_missing_corpus_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pretrain.py"), "model=tiny", "logger=none",
         f"corpus.path={tmp_path / 'nope.smi'}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"DataError: corpus.path={tmp_path / 'nope.smi'} is not a file" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_report_cli_writes_the_page_and_the_notebook_and_a_bad_dir_is_one_line(tmp_path):
    _metrics_only_run(tmp_path / "runs" / "0")
    script, out = str(ROOT / "scripts" / "report.py"), tmp_path / "report"
    ok = subprocess.run(
        [sys.executable, script, str(tmp_path / "runs"), "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"written: {out / 'report.html'}" in ok.stdout
    html = (out / "report.html").read_text()
    assert "| frozen (tiny) |" not in html and "<td>frozen (tiny)</td>" in html  # the table is rendered, not raw
    assert "These runs have no finetune arm" in html  # a metrics.json alone still gives a (short) report
    assert (out / "report.ipynb").is_file() and (out / "cost_quality.png").is_file()
    bad = subprocess.run(
        [sys.executable, script, str(tmp_path / "nothing")], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2
    assert "NoRunsError: no metrics.json under" in bad.stderr and "Traceback" not in bad.stderr


def test_predict_cli_scores_a_file_and_bad_arguments_are_one_line(tmp_path):
    from delbind.tasks import train
    from tests.helpers import SMOKE, compose_cfg

    run_dir = tmp_path / "run"
    train.run(compose_cfg(run_dir, [*SMOKE, "baseline=ecfp_rf"]))
    (tmp_path / "lib.smi").write_text("CCO ethanol\nnot_a_smiles x\nc1ccccc1O phenol\n")

    def predict(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(ROOT / "scripts" / "predict.py"), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    out = tmp_path / "scores.csv"
    proc = predict(f"model={run_dir}", f"input={tmp_path / 'lib.smi'}", f"output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = pd.read_csv(out)
    assert scores["name"].tolist() == ["ethanol", "x", "phenol"] and scores["score"].isna().tolist() == [0, 1, 0]
    assert f"{out}: 3 rows, 1 invalid SMILES" in proc.stdout
    for args, message in [
        ((f"model={run_dir}", f"input={tmp_path / 'lib.smi'}"), "set output=..."),
        ((f"model={run_dir}", f"input={tmp_path / 'x.csv'}", f"output={out}.2.csv"), "x.csv does not exist"),
        ((f"model={tmp_path}", f"input={tmp_path / 'lib.smi'}", f"output={out}.3.csv"), "neither a run dir"),
        ((f"model={run_dir}", "input=a", "output=b", "batch_size=3"), "batch_size"),
    ]:
        proc = predict(*args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


def test_aa_cli_writes_the_study_and_a_recipe_clash_is_one_line(tmp_path):
    write_seed_runs(tmp_path / "runs", "frozen", range(4))
    write_seed_runs(tmp_path / "runs", "ecfp_rf", range(4), fit_sd=0.01)
    script = str(ROOT / "scripts" / "aa.py")
    ok = subprocess.run([sys.executable, script, str(tmp_path / "runs"), "--out", str(tmp_path / "aa")],
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "| frozen (m) | 4 |" in ok.stdout and "Power of the repeats test against **ecfp_rf (m)**" in ok.stdout
    assert (tmp_path / "aa" / "aa.md").is_file() and (tmp_path / "aa" / "aa_splits.csv").is_file()
    write_seed_runs(tmp_path / "again", "frozen", [0], label="other")
    bad = subprocess.run([sys.executable, script, str(tmp_path / "runs"), str(tmp_path / "again")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "DataError: two runs of frozen (m)" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_bench_data_builds_a_kindel_depth_part_or_names_what_would_build(tmp_path):
    bench = [sys.executable, str(ROOT / "scripts" / "bench_data.py"), "--rows", "60000", "--part", "30000",
             "--depth", "kindel", "--split", "random", "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(bench, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "out" / "build.md").read_text()
    assert text.startswith("30,000-row synthetic screen (kindel depth), data.split=random")
    assert "| `neg_max_fold_rule` | auto: " in text or re.search(
        r"`DataError: only \d+ hard negatives .*data.hard_per_binder=", text
    )
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert "--depth kindel --rows 60000 --part 30000" in meta["command"]
