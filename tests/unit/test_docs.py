"""The manual: README stays a front door, the configuration reference is generated from conf/ and never drifts."""

import re

import yaml

from delbind import confdoc
from tests.helpers import ROOT


def _leaves(value: object, prefix: str = "") -> set[str]:
    if isinstance(value, dict) and value:
        return set().union(*(_leaves(v, f"{prefix}{k}.") for k, v in value.items()))
    return {prefix.rstrip(".")}


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    text = "\n".join(lines)
    for command in ("make train", "mode=frozen", "experiment=frozen_vs_finetune", "data=table", "scripts/predict.py",
                    "scripts/report.py", "make test"):  # fmt: skip
        assert command in text, command


def test_the_configuration_page_is_the_reference_generated_from_conf():
    page = (ROOT / "docs" / "configuration.md").read_text()
    block = confdoc.BLOCK.search(page)
    assert block is not None and block.group("body") == confdoc.reference(ROOT / "conf")  # else: results.py render


def test_every_key_of_every_conf_file_is_in_the_reference():
    for path in sorted((ROOT / "conf").glob("**/*.yaml")):
        loaded = yaml.safe_load(path.read_text()) or {}
        want = {k for k in _leaves(loaded) if k.split(".")[0] not in confdoc.SKIP}
        _, keys = confdoc.keys_of(path.read_text())
        documented = {k.path for k in keys}
        # a key is documented itself, or (an empty mapping or list) as the parent row of its entries
        missing = {k for k in want if k not in documented and not any(d.startswith(f"{k}.") for d in documented)}
        assert not missing, (path, missing)


def test_keys_comments_continuations_and_notes_are_read_as_written():
    text = """# What this file is.
# Its second line.
name: demo
lr: 3.0e-2          # the head's rate,
                    # continued here
# A note on the next key.
nested:             # a mapping
  depth: 2          # inner
  list: [a, b]
defaults:
  - other
"""
    lead, keys = confdoc.keys_of(text)
    assert lead == "What this file is. Its second line."
    rows = {k.path: (k.default, k.comment) for k in keys}
    assert rows == {
        "name": ("demo", ""),
        "lr": ("3.0e-2", "the head's rate, continued here"),
        "nested": ("(below)", "A note on the next key. — a mapping"),
        "nested.depth": ("2", "inner"),
        "nested.list": ("[a, b]", ""),
    }
    assert "| `lr` | `3.0e-2` | the head's rate, continued here |" in confdoc.table(keys)


def test_every_configuration_key_says_what_it_does():
    rows = re.findall(r"^\| `([^`]+)` \| (.*?) \| (.*?) \|$", confdoc.reference(ROOT / "conf"), re.M)
    assert len(rows) > 300
    assert [key for key, _, what in rows if not what.strip()] == []


def test_a_key_only_set_elsewhere_borrows_the_description_from_where_it_is_defined(tmp_path):
    (tmp_path / "train.yaml").write_text("eval:\n  n_bootstrap: 1000   # bootstrap resamples\n")
    (tmp_path / "debug").mkdir()
    (tmp_path / "debug" / "smoke.yaml").write_text("# @package _global_\neval:\n  n_bootstrap: 100\n")
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "default.yaml").write_text("weight_decay: 0.01\n")
    text = confdoc.reference(tmp_path)
    assert text.count("| `eval.n_bootstrap` | `1000` | bootstrap resamples |") == 1
    assert "| `eval.n_bootstrap` | `100` | bootstrap resamples |" in text
    assert "| `weight_decay` | `0.01` | " in text and "(TrainingArguments)" in text  # transformers' own help


def test_frozen_ecfp_alone_chooses_its_checkpoint_on_val_hard_loss():
    from tests.helpers import compose_cfg

    ecfp = compose_cfg(ROOT / "outputs" / "never", ["arm=frozen_ecfp"])
    assert (ecfp.trainer.metric_for_best_model, ecfp.trainer.greater_is_better) == ("eval_val_hard_loss", False)
    assert ecfp.optimized_metric == "val_hard_auprc"  # a sweeper (direction: maximize) still maximizes AU-PRC
    frozen = compose_cfg(ROOT / "outputs" / "never", ["arm=frozen"])  # every other arm keeps val hard AU-PRC
    assert (frozen.trainer.metric_for_best_model, frozen.trainer.greater_is_better) == ("eval_val_hard_auprc", True)
