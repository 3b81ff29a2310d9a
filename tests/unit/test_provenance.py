import subprocess

from delbind.provenance import commit


def test_a_commit_is_dirty_for_changed_code_but_not_for_results_written_one_after_another(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)  # fmt: skip

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "meta.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True)
    read = commit.__wrapped__  # uncached: the tree changes between calls
    assert read(tmp_path) == head.stdout.strip()
    (tmp_path / "results" / "meta.json").write_text('{"commit": "new"}')
    assert read(tmp_path) == head.stdout.strip()  # a table collected before the next: the code is the same
    (tmp_path / "code.py").write_text("x = 2\n")
    assert read(tmp_path) == head.stdout.strip() + "+dirty"
    assert read(tmp_path / "nowhere") == "unknown"
