"""Committed results, generated from files (never typed by hand).

python scripts/results.py collect <sweep dir> <results/name> --command "<the command that made the sweep>"
    copies the sweep's comparison / panel tables into results/<name>/ with meta.json (command, commit, machine, date)
python scripts/results.py keep <sweep dir> [<sweep dir> ...] results/<name>/runs[/<row>]
    copies every fold run's metrics.json and predictions.parquet to .../[<target>/<arm>/...]fold<k>, so a comparison or
    panel can be redrawn from committed files (python scripts/compare.py results/<name>/runs)
python scripts/results.py run <run dir> results/<name> --command "make train"
    one run's printed test table and cost as results/<name>/run.md (with its metrics.json and meta.json)
python scripts/results.py spread results/aa_gsk3b/aa_spread.csv results/defaults_* ... --out results/<name>
    each comparison's top row on CV val against the band that retraining alone spans (the A/A study's seed spread)
python scripts/results.py render
    rewrites every `<!-- results:<name>/<table> -->` block of README.md and docs/*.md from results/<name>/<table>.md
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DELBIND_ROOT", str(ROOT))

from delbind.comparison import spread_check  # noqa: E402
from delbind.errors import DataError, NoRunsError, UnreadableRunError  # noqa: E402
from delbind.results import collect, keep, pretrain_summary, save, save_run, write_pages  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect", help="copy a sweep's tables into results/<name>/")
    c.add_argument("sweep_dir", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--command", required=True, help="the command that made the sweep, as a reader would rerun it")
    c.add_argument("--run", action="append", default=[], help="a job of the sweep whose printed table to keep")
    c.add_argument(
        "--runs", action="append", default=[], type=Path, help="a dir of the runs the tables were drawn from"
    )
    pt = sub.add_parser("pretrain", help="a pre-training run's corpus, cost and MLM loss as results/<name>/pretrain.md")
    pt.add_argument("run_dir", type=Path)
    pt.add_argument("out", type=Path)
    pt.add_argument("--command", required=True, help="the scripts/pretrain.py command that made the run")
    k = sub.add_parser("keep", help="copy a sweep's fold runs (metrics + predictions) under results/<name>/runs/")
    k.add_argument("sweep_dirs", type=Path, nargs="+")
    k.add_argument("dest", type=Path)
    r = sub.add_parser("run", help="one run's printed test table and cost as results/<name>/run.md")
    r.add_argument("run_dir", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--command", required=True, help="the command that made the run")
    sp = sub.add_parser("spread", help="each comparison's CV val margin against the A/A study's seed spread")
    sp.add_argument("spread_csv", type=Path, help="the A/A study's aa_spread.csv")
    sp.add_argument("comparisons", type=Path, nargs="+", help="results dirs holding a comparison.csv")
    sp.add_argument("--out", type=Path, required=True)
    sub.add_parser("render", help="rewrite the results blocks of README.md and docs/ from results/")
    args = parser.parse_args()
    try:
        if args.what == "collect":
            out = collect(args.sweep_dir, args.out, args.command, ROOT, tuple(args.run), tuple(args.runs))
            print(f"written: {out}")
        elif args.what == "keep":
            kept = keep(args.sweep_dirs, args.dest)
            where = ", ".join(str(p.relative_to(args.dest)) for p in kept[:3]) + (", ..." if len(kept) > 3 else "")
            print(f"kept {len(kept)} fold run{'s' * (len(kept) != 1)} under {args.dest}: {where}")
        elif args.what == "run":
            print(f"written: {save_run(args.run_dir, args.out, args.command, ROOT)}")
        elif args.what == "pretrain":
            print(f"written: {save(args.out, 'pretrain', pretrain_summary(args.run_dir), args.command, ROOT)}")
        elif args.what == "spread":
            table = spread_check.check(*spread_check.load(args.spread_csv, args.comparisons))
            command = "python scripts/results.py spread " + " ".join(
                str(p) for p in [args.spread_csv, *args.comparisons, "--out", args.out]
            )
            path = save(args.out, "check", spread_check.to_markdown(table, str(args.spread_csv)), command, ROOT)
            table.to_csv(args.out / "check.csv", index=False)
            print(f"written: {path}")
        else:
            changed = write_pages(ROOT, ROOT / "results")
            print(f"results blocks rendered from results/; changed: {[str(p.relative_to(ROOT)) for p in changed]}")
    except (DataError, NoRunsError, UnreadableRunError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
