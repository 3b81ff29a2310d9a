"""The training console: one bar with the running loss and one line per evaluation; the per-step history stays."""

import json
from pathlib import Path

from delbind.tasks import train


def test_smoke_run_prints_a_bar_and_one_line_per_evaluation_but_keeps_every_step(make_cfg, capfd, caplog):
    cfg = make_cfg("mode=finetune", "early_stopping.patience=5")  # on, as by default: it warned once per val set
    metrics = train.run(cfg)
    out, err = capfd.readouterr()
    # Lines end with "\n" only: a bar redraws itself with "\r" on one line (str.splitlines would split there too).
    lines = [line for line in (out + err).split("\n") if line.strip()]

    assert not [line for line in lines if "{'loss'" in line or "{'eval_" in line]  # no dict line per step
    assert not [r for r in caplog.records if "early stopping required" in r.getMessage()]
    evals = [line for line in lines if line.startswith("eval | ")]
    assert len(evals) == cfg.trainer.num_train_epochs == 2  # eval_strategy=epoch, both val sets on one line
    assert all("val_easy loss" in line and "val_hard loss" in line and "auprc" in line for line in evals)
    assert len([line for line in lines if line.startswith("eval after training | ")]) == 1  # the best model
    bar_frames = (out + err).split("\r")
    assert any(f"{metrics['global_step']}/{metrics['global_step']}" in f and "loss=" in f for f in bar_frames)
    # The tokenizing bar, the training bar, 3 eval lines, the saved model's bar; then the final table and run dir.
    assert len(lines) <= 12, "\n".join(lines)

    states = Path(cfg.paths.output_dir, "checkpoints").glob("checkpoint-*/trainer_state.json")
    state = max(states, key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))  # the newest by step, not by name
    history = json.loads(state.read_text())["log_history"]
    assert len([h for h in history if "loss" in h]) == metrics["global_step"]  # logging_steps=1 still feeds the curve
