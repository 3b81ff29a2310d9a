import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import ROOT


def test_bench_parallel_times_two_folds_one_at_a_time_and_side_by_side(tmp_path):
    costs = tmp_path / "comparison.csv"  # a comparison's rows: mean train time per fold and folds
    pd.DataFrame({"arm": ["frozen", "finetune"], "n_units": [5, 5], "train_runtime_s": [40.0, 1000.0]}).to_csv(costs)
    bench = [sys.executable, str(ROOT / "scripts" / "bench_parallel.py"), "--arm", "frozen", "--cost", str(costs),
             "--save", str(tmp_path / "results"), "--", "model=tiny", "debug=smoke"]  # fmt: skip
    out = subprocess.run(bench, capture_output=True, text=True, env={**os.environ, "DELBIND_ROOT": str(ROOT)},
                         timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    one, two = r["one_at_a_time"], r["side_by_side"]
    assert sorted(j["fold"] for j in one["jobs"]) == sorted(j["fold"] for j in two["jobs"]) == [0, 1]
    # threads=auto: a job alone takes the cores, two side by side share them
    assert {j["threads"] for j in two["jobs"]} == {max(1, one["jobs"][0]["threads"] // 2)}
    assert r["speedup"] == pytest.approx(one["wall_s"] / two["wall_s"])
    saved = (tmp_path / "results" / "bench_parallel.md").read_text()
    assert "| one at a time |" in saved and "| side by side |" in saved and f"**{r['speedup']:.2f}x**" in saved
    total = 5 * 40 + 5 * 1000
    assert f"{total:,} s of training one job at a time" in saved and f"{total / r['speedup']:,.0f} s" in saved
    meta = json.loads((tmp_path / "results" / "meta.json").read_text())
    assert meta["command"].startswith("python scripts/bench_parallel.py --arm frozen")


def test_bench_parallel_refuses_a_cost_file_that_is_not_a_comparison(tmp_path):
    from bench_parallel import comparison_cost  # scripts/ is on the path (tests/helpers.py)

    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="not a comparison.csv"):
        comparison_cost(tmp_path / "x.csv", 1.2)
