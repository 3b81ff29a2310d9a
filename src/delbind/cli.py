"""What every script does around its task: errors a user can fix as one line, not a traceback wall."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from delbind.errors import USER_ERRORS

T = TypeVar("T")
log = logging.getLogger("delbind")


def run_task(task: Callable[..., T], *args: Any, in_sweep: bool = False) -> T:
    """Run ``task``; a user error (bad input, a missing file or asset) is logged as one line and exits 2.

    In a sweep the error is re-raised instead: Hydra records the failed job and the sweep goes on.
    """
    try:
        return task(*args)
    except USER_ERRORS as e:
        log.error("%s: %s", type(e).__name__, e)
        if in_sweep:
            raise
        sys.exit(2)


def run_dirs_task(task: Callable[..., T], config: str, conf_dir: Path, doc: str) -> T:
    """The scripts that read run dirs (compare, report, ensemble, blend): ``DIR... [--out DIR]`` into the config
    ``config``."""
    from hydra import compose, initialize_config_dir

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, sweep dirs or metrics.json files")
    parser.add_argument("--out", type=Path, help="where to write (default: the single dir given, else under outputs/)")
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config)
    if "reference" in cfg:  # the scripts that write a comparison table (compare, report), not ensemble
        parser.add_argument(
            "--reference",
            help="the row every other is paired against by split: an arm name (ecfp_rf) or a row label "
            "(default: the row with the highest val hard AU-PRC)",
        )
        parser.add_argument("--margin", type=float, default=cfg.margin, help="practical margin of the verdicts")
    if "twins" in cfg:  # compare, panel
        parser.add_argument("--twins", metavar="MODEL", help="pair each row with the same recipe on MODEL (a model "
                            "name: rxnfp_bert) instead of against one reference: does the trunk matter?")  # fmt: skip
    if "labels" in cfg:  # compare, report
        parser.add_argument("--no-labels", action="store_true", help="a sweep's label makes no row of its own: one "
                            "recipe kept under several labels (lr1e-4, none) pools as one row")  # fmt: skip
    if "weight" in cfg:  # blend
        parser.add_argument("--arms", nargs=2, metavar="ARM", help="the two rows to blend: arm names (ecfp_rf) or "
                            "row labels (default: the only two rows found)")  # fmt: skip
        parser.add_argument("--weight", default=cfg.weight, help="the first arm's weight in [0, 1], or 'val': "
                            "chosen per fold on val hard AU-PRC (default: %(default)s)")  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="an unreadable or unfinished run is an error "
                        "(default: left out, one line each, and counted under the table)")  # fmt: skip
    args = parser.parse_args()
    cfg.strict = args.strict or cfg.strict
    cfg.dirs, cfg.out = [str(d) for d in args.dirs], None if args.out is None else str(args.out)
    if "reference" in cfg:
        # the config's reference stays unless one is given (panel.yaml's is ecfp_rf; compare's null: the val-best)
        cfg.reference, cfg.margin = args.reference or cfg.reference, args.margin
    if "labels" in cfg:
        cfg.labels = cfg.labels and not args.no_labels
    if "twins" in cfg:
        cfg.twins = args.twins or cfg.twins
    if "weight" in cfg:
        cfg.arms, cfg.weight = args.arms, args.weight
    return run_task(task, cfg)


def task_config(path: Path, argv: list[str], doc: str) -> Any:
    """The entry config at ``path`` with ``key=value`` overrides (OmegaConf dotlist: values parse as YAML).

    For scripts whose keys clash with config group names (predict.py's ``model=<dir>``), so not Hydra apps.
    An unknown key, a malformed argument or a required key left unset is one line and exit 2; -h prints the doc.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if {"-h", "--help"} & set(argv):
        print(f"{doc}\nKeys and defaults ({path}):\n\n{path.read_text()}")
        sys.exit(0)
    cfg = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, True)  # an unknown key is an error, not silently added
    try:
        bad = [a for a in argv if "=" not in a]
        if bad:
            raise ValueError(f"arguments must be key=value, got {bad}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(argv))
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ValueError(f"set {', '.join(f'{k}=...' for k in missing)} (see --help)")
    except (ValueError, OmegaConfBaseException) as e:
        log.error("%s: %s", type(e).__name__, str(e).splitlines()[0])
        sys.exit(2)
    return cfg


def setup_logging() -> None:
    """Console logging as a Hydra app's, for the scripts that are not Hydra apps."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
