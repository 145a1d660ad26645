"""`shoprec report`: the bootstrap on known cases, the segments, bad inputs with clear errors, and
the whole report on a real git repository made from the project, through the real pipeline.

The end-to-end tests (marked `notebook`, one xdist group) share one repository and one cache:
base runs once, in the first report, beside a head of identical code; the popularity head and
the markdown-only head then run at once, each in its own `shoprec report`, against the cached base.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoprec import cli
from shoprec.metrics import ranking_metrics
from shoprec.report import bootstrap, git
from shoprec.report.bootstrap import BETTER, NO_CHANGE, WORSE
from shoprec.report.cache import SIDE_RECORD, SideCache, data_fingerprint, side_key
from shoprec.report.changes import lock
from shoprec.report.command import clear_previous_report, resolve_sides
from shoprec.report.comparison import compare
from shoprec.report.environments import build_venv, mismatches
from shoprec.report.errors import ReportError
from shoprec.report.inputs import LISTS_FILE, SideData, load_side
from shoprec.report.segments import HEAD, LONG, SHORT, TAIL, populations

METRICS = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")


# The bootstrap on cases whose answer is known.


def test_identical_sides_give_a_zero_interval_and_no_change():
    values = np.random.default_rng(1).random((300, 4))
    counts = bootstrap.draw_counts(300, 0)
    for found in bootstrap.compare_means(values, values.copy(), counts):
        assert (found.delta, found.low, found.high) == (0.0, 0.0, 0.0)
        assert found.verdict == NO_CHANGE


def test_a_constant_improvement_is_exactly_that_improvement():
    base = np.random.default_rng(2).random((250, 1)) * 0.8
    found = bootstrap.compare_means(base, base + 0.125, bootstrap.draw_counts(250, 0))[0]
    assert found.delta == pytest.approx(0.125, abs=1e-12)
    assert found.low == pytest.approx(0.125, abs=1e-12)
    assert found.high == pytest.approx(0.125, abs=1e-12)
    assert found.verdict == BETTER


def test_the_interval_has_the_width_of_the_standard_error():
    """Per-user differences +0.3 or -0.1 with equal chance: mean 0.1, sd 0.2; the 95% interval
    is about 0.1 +- 1.96 * 0.2 / sqrt(n)."""
    n = 1600
    differences = np.where(np.arange(n) % 2 == 0, 0.3, -0.1)
    base = np.full((n, 1), 0.5)
    found = bootstrap.compare_means(base, base + differences[:, None], bootstrap.draw_counts(n, 3))
    half_width = 1.96 * 0.2 / np.sqrt(n)
    assert found[0].delta == pytest.approx(0.1)
    assert found[0].low == pytest.approx(0.1 - half_width, abs=0.15 * half_width)
    assert found[0].high == pytest.approx(0.1 + half_width, abs=0.15 * half_width)
    assert found[0].verdict == BETTER


def test_a_loss_on_a_few_users_among_many_unchanged_is_worse():
    n = 400
    base = np.full((n, 1), 0.6)
    head = base.copy()
    head[:40] = 0.1  # 40 users lose 0.5 each: mean -0.05
    found = bootstrap.compare_means(base, head, bootstrap.draw_counts(n, 0))[0]
    assert found.delta == pytest.approx(-0.05)
    assert found.high < 0 and found.verdict == WORSE


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.01, 0.2, BETTER), (-0.2, -0.01, WORSE), (-0.1, 0.1, NO_CHANGE), (0.0, 0.1, NO_CHANGE),
     (-0.1, 0.0, NO_CHANGE), (0.0, 0.0, NO_CHANGE)],
)  # fmt: skip
def test_verdict_needs_the_whole_interval_on_one_side_of_zero(low, high, expected):
    assert bootstrap.verdict(low, high) == expected


def test_sums_are_exact_whatever_order_the_users_come_in():
    """No BLAS kernel can change a digit: the sums are whole numbers, so any order adds up the
    same; reversing the users (and their counts) gives bit-identical sums."""
    values = np.random.default_rng(4).random((999, 3))
    counts = bootstrap.draw_counts(999, 0)
    sums, unit = bootstrap.resampled_sums(values, counts)
    reversed_sums, _ = bootstrap.resampled_sums(values[::-1].copy(), counts[:, ::-1].copy())
    assert np.array_equal(sums, reversed_sums)
    assert np.array_equal(sums, np.round(sums))
    assert np.abs(sums * unit / 999 - counts @ values / 999).max() < 1e-12


def test_draws_are_seeded_and_one_stream_per_population():
    first, again = bootstrap.draw_counts(50, 1), bootstrap.draw_counts(50, 1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, bootstrap.draw_counts(50, 2))
    assert first.shape == (bootstrap.RESAMPLES, 50)
    assert np.all(first.sum(axis=1) == 50)  # each resample draws n users


def test_unpaired_sides_are_resampled_on_their_own():
    base = np.full((100, 1), 0.2)
    head = np.full((150, 1), 0.3)
    found = bootstrap.compare_means(
        base, head, bootstrap.draw_counts(100, 0), bootstrap.draw_counts(150, 1000)
    )[0]
    assert found.delta == pytest.approx(0.1)
    assert found.low == pytest.approx(0.1) and found.high == pytest.approx(0.1)


def test_coverage_counts_the_items_the_drawn_users_are_shown():
    """User 0 gets items 0, 1; user 1 items 1, 2; user 2 nothing. Drawing users 0 and 0 shows two
    items; users 1 and 2, two; everyone, three."""
    ranked = np.array([[0, 1], [1, 2], [-1, -1]])
    counts = np.array([[3.0, 0, 0], [0, 2, 1], [1, 1, 1]])
    assert bootstrap.shown_items(ranked, counts).tolist() == [[1, 1, 2], [2, 2, 3]]
    everyone = bootstrap.compare_coverage(ranked, ranked, (4, 4), counts)
    assert [(found.base, found.delta, found.low, found.high) for found in everyone] == [
        (0.5, 0.0, 0.0, 0.0),
        (0.75, 0.0, 0.0, 0.0),
    ]


def test_coverage_intervals_centre_on_the_observed_difference():
    """A resample misses about a third of the users and shows fewer items: the differences are
    shifted back so the interval holds the observed difference."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 500, size=(300, 10))
    head = rng.integers(0, 1000, size=(300, 10))  # a head that spreads over more items
    found = bootstrap.compare_coverage(base, head, (1000, 1000), bootstrap.draw_counts(300, 0))
    at_10 = found[-1]
    assert at_10.low < at_10.delta < at_10.high
    assert at_10.verdict == BETTER


def test_values_outside_zero_to_one_are_refused():
    counts = bootstrap.draw_counts(3, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bootstrap.resampled_sums(np.array([[0.5], [1.5], [0.1]]), counts)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap.resampled_sums(np.array([[0.5], [np.nan], [0.1]]), counts)
    with pytest.raises(ValueError, match="do not match 3 users"):
        bootstrap.resampled_sums(np.zeros((4, 1)), counts)
    with pytest.raises(ValueError, match="empty"):
        bootstrap.draw_counts(0, 0)


# The comparison of two sides, on made-up runs.


def made_up_side(seed: int, users: int = 60, items: int = 80) -> SideData:
    """A side whose lists (10 deep: curves to k = 10), held-out and training data are random,
    and whose evaluation.json holds what shoprec.metrics gives for them."""
    rng = np.random.default_rng(seed)
    lists = pd.DataFrame(
        [(user, item, rank + 1) for user in range(users)
         for rank, item in enumerate(rng.choice(items, 10, replace=False))],
        columns=["user_id", "item_id", "rank"],
    )  # fmt: skip
    test = pd.DataFrame({"user_id": np.arange(users), "item_id": rng.integers(0, items, users)})
    train = pd.DataFrame(
        {"user_id": rng.integers(0, users, 600), "item_id": rng.integers(0, items, 600)}
    )
    names = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")
    own = ranking_metrics(lists, test, k=10, n_items=items, metrics=names)
    evaluation = {"k": 10, "metrics": {"candidate": own}}
    return SideData(lists, test, train, np.arange(items), evaluation, {}, {})


def test_a_side_compared_with_itself_changes_nothing_and_agrees_with_its_evaluation():
    side = made_up_side(1)
    found = compare(side, side)
    assert found.paired and found.k == 10 and found.depth == 10 and found.notes == []
    assert all(e.delta == e.low == e.high == 0 for e in found.metrics.values())
    assert found.metrics["ndcg"].base == side.evaluation["metrics"]["candidate"]["ndcg"]
    assert found.metrics["coverage"].base == side.evaluation["metrics"]["candidate"]["coverage"]
    assert [segment.name for segment in found.segments] == [SHORT, LONG, HEAD, TAIL]


def test_a_side_whose_own_metrics_differ_from_the_reports_is_named():
    side = made_up_side(1)
    side.evaluation["metrics"]["candidate"]["ndcg"] += 0.01
    [note] = compare(side, made_up_side(1)).notes
    assert note.startswith("base's own evaluation gives nDCG@10 = ")
    assert "the metric code differs between base and this report" in note


def test_different_held_out_data_are_compared_unpaired_and_said_so():
    base, head = made_up_side(1), made_up_side(2)
    found = compare(base, head)
    assert not found.paired
    assert "unpaired bootstrap" in found.notes[0]
    assert found.metrics["ndcg"].low < found.metrics["ndcg"].delta < found.metrics["ndcg"].high


# Segments.


def test_segments_cut_histories_at_the_median_and_items_at_half_the_interactions():
    train = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2, 3, 4, 4, 4],
            "item_id": [10, 11, 12, 13, 10, 11, 10, 10, 11, 14],
        }
    )
    test = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [14, 12, 11, 15]})
    found = {segment.name: segment for segment in populations(test, train, np.arange(10, 16))}
    # histories 4, 2, 1, 3: the lower median is 2
    assert found[SHORT].users.tolist() == [2, 3] and found[LONG].users.tolist() == [1, 4]
    assert "at most 2 training items" in found[SHORT].definition
    # popularity: 10 x4, 11 x3, then 12, 13, 14 once, 15 never; 10 interactions, half is 5
    assert found[HEAD].items.tolist() == [10, 11]
    assert found[TAIL].items.tolist() == [12, 13, 14, 15]
    assert found[HEAD].users.tolist() == [3]  # the only user holding out a head item
    assert found[TAIL].users.tolist() == [1, 2, 4]


# Bad inputs: clear errors, nothing run.


@pytest.fixture
def small_repo(tmp_path: Path, repo_root: Path) -> Path:
    """A git repository with the project's 04_evaluate notebook and lock file, and one commit."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copyfile(repo_root / "notebooks/04_evaluate.ipynb", repo / "notebooks/04_evaluate.ipynb")
    shutil.copyfile(repo_root / "requirements.lock", repo / "requirements.lock")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _commit(repo, "the project")
    return repo


def test_an_unknown_ref_is_named(small_repo: Path):
    with pytest.raises(ReportError, match=r"--base 'no-such-branch': no such commit.*git fetch"):
        resolve_sides(small_repo, "no-such-branch", None)
    with pytest.raises(ReportError, match=r"--head 'v9': no such commit"):
        resolve_sides(small_repo, "main", "v9")
    assert ReportError.exit_code == 2


def test_a_base_from_before_the_report_is_refused_before_anything_runs(small_repo: Path):
    notebook = small_repo / "notebooks/04_evaluate.ipynb"
    notebook.write_text(notebook.read_text().replace("recommendations_top20.csv", "x.csv"))
    _commit(small_repo, "an old 04_evaluate")
    with pytest.raises(ReportError, match=r"does not write recommendations_top20.csv.*predates"):
        resolve_sides(small_repo, "HEAD", "HEAD~1")


def test_head_is_the_commit_and_uncommitted_changes_are_listed_not_run(small_repo: Path):
    (small_repo / "requirements.lock").write_text("changed\n")
    base, head, uncommitted = resolve_sides(small_repo, "main", None)
    assert head.commit == git.resolve_commit(small_repo, "HEAD", "--head")
    assert head.lock != b"changed\n"  # the committed lock file, not the work tree's
    assert uncommitted == ["requirements.lock"]
    assert resolve_sides(small_repo, "main", "HEAD")[2] == []  # a named head: nothing to say


def test_outside_a_git_repository_the_report_says_so(tmp_path: Path):
    with pytest.raises(ReportError, match="not in a git repository"):
        git.repository_root(tmp_path)


def test_a_missing_base_is_a_usage_error(shoprec):
    result = shoprec("report", "--profile", "smoke")
    assert result.returncode == 2
    assert "the following arguments are required: --base" in result.stderr


def test_an_unknown_profile_or_owned_parameter_is_refused_before_anything_runs(
    small_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(small_repo))
    assert cli.main(["report", "--base", "main", "--profile", "huge"]) == 2
    assert "--profile='huge' is not allowed" in capsys.readouterr().err
    assert cli.main(["report", "--base", "main", "-p", "output_dir=/tmp/x"]) == 1
    assert "set by the pipeline itself" in capsys.readouterr().err


def test_a_side_missing_what_the_report_reads_names_the_file(tmp_path: Path):
    with pytest.raises(ReportError, match=r"base: .*recommendations_top20.csv is missing"):
        load_side(tmp_path, "base")
    (tmp_path / LISTS_FILE).parent.mkdir(parents=True)
    (tmp_path / LISTS_FILE).write_text("user_id,item_id\n1,2\n")
    with pytest.raises(ReportError, match=r"lacks column\(s\) rank"):
        load_side(tmp_path, "base")
    (tmp_path / LISTS_FILE).write_text("user_id,item_id,rank\n1,x,1\n")
    with pytest.raises(ReportError, match="must hold integers"):
        load_side(tmp_path, "base")


def test_an_earlier_report_in_the_folder_is_cleared_and_nothing_else(tmp_path: Path):
    for stale in ("report.json", "report.md", "metrics_at_k.png", "notebook-diffs/x/index.html"):
        (tmp_path / stale).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stale).write_text("stale")
    (tmp_path / "notes.txt").write_text("mine")
    clear_previous_report(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


# The cache and the environments.


def test_the_key_changes_with_every_input():
    key = side_key("a" * 40, "lock", "synthetic", "smoke", "synthetic", {})
    assert key == side_key("a" * 40, "lock", "synthetic", "smoke", "synthetic", {})
    for changed in (
        side_key("b" * 40, "lock", "synthetic", "smoke", "synthetic", {}),
        side_key("a" * 40, "lock2", "synthetic", "smoke", "synthetic", {}),
        side_key("a" * 40, "lock", "other data", "smoke", "synthetic", {}),
        side_key("a" * 40, "lock", "synthetic", "default", "synthetic", {}),
        side_key("a" * 40, "lock", "synthetic", "smoke", "synthetic", {"seed": 1}),
    ):
        assert changed != key


def test_data_fingerprints(tmp_path: Path):
    assert data_fingerprint("synthetic", {}) == "synthetic"
    assert data_fingerprint("sql", {}) is None  # a live database: never cached
    assert data_fingerprint("movielens-100k", {}).startswith("movielens-100k:")
    extract = tmp_path / "orders.csv"
    extract.write_text("user_id,item_id\n1,2\n")
    options = {"dataset_options": {"path": str(extract)}}
    first = data_fingerprint("file", options)
    extract.write_text("user_id,item_id\n1,3\n")
    assert data_fingerprint("file", options) != first
    with pytest.raises(ReportError, match="is not a file"):
        data_fingerprint("file", {"dataset_options": {"path": str(tmp_path / "gone.csv")}})
    with pytest.raises(ReportError, match="--dataset 'nope'"):
        data_fingerprint("nope", {})


def test_a_half_written_cache_entry_is_not_read_and_is_replaced(tmp_path: Path):
    cache = SideCache(tmp_path / "cache")
    run = tmp_path / "run"
    (run / "03_train" / "model").mkdir(parents=True)
    (run / "03_train" / "model" / "arrays.npz").write_bytes(b"x" * 100)
    (run / "run.json").write_text("{}")
    broken = cache.root / "key-1"
    broken.mkdir(parents=True)
    (broken / SIDE_RECORD).write_text("{not json")
    assert cache.get("key-1") is None
    entry = cache.put("key-1", run, {"run_id": "r"})
    assert cache.get("key-1") == entry
    assert not (entry / "03_train" / "model").exists()  # the arrays are not kept
    assert json.loads((entry / SIDE_RECORD).read_text())["run_id"] == "r"


def test_a_side_runs_here_only_if_this_environment_holds_its_lock(repo_root: Path):
    lock = (repo_root / "requirements.lock").read_bytes()
    assert mismatches(lock) == []  # make setup synced this environment to the project's lock
    numpy = next(line for line in lock.decode().splitlines() if line.startswith("numpy=="))
    other = lock.decode().replace(numpy, "numpy==0.0.1 \\")
    other += "no-such-package==1.0\nnever-here==2.0 ; sys_platform == 'never'\n"
    found = mismatches(other.encode())
    assert found[0] == "no-such-package 1.0 (not installed)"
    assert found[1].startswith("numpy 0.0.1 (installed: ") and len(found) == 2
    without_scipy = "\n".join(
        line for line in lock.decode().splitlines() if not line.startswith("scipy==")
    )
    assert mismatches(without_scipy.encode())[0].startswith("no scipy (installed: ")


def test_a_venv_is_built_once_per_lock_file(tmp_path: Path):
    python = build_venv(b"", tmp_path / "venvs" / "empty")
    assert python.exists()
    built = (tmp_path / "venvs" / "empty" / "pyvenv.cfg").stat().st_mtime_ns
    assert build_venv(b"", tmp_path / "venvs" / "empty") == python
    assert (tmp_path / "venvs" / "empty" / "pyvenv.cfg").stat().st_mtime_ns == built


def test_lock_changes_name_each_package(small_repo: Path):
    lock_file = small_repo / "requirements.lock"
    text = lock_file.read_text()
    numpy = next(line for line in text.splitlines() if line.startswith("numpy=="))
    lock_file.write_text(text.replace(numpy, "numpy==0.0.1 \\"))
    _commit(small_repo, "an older numpy")
    found = lock(small_repo, "HEAD~1", "HEAD")
    assert found["changed"] is True
    assert found["packages"] == [
        {"name": "numpy", "base": numpy.split("==")[1].split()[0], "head": "0.0.1"}
    ]
    assert lock(small_repo, "HEAD", "HEAD") == {"changed": False, "packages": []}


# The whole report: a real repository, the real pipeline, the smoke profile.

SMOKE = ("--profile", "smoke")


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _edit_notebook(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> dict[str, dict]:
    """Reports against one base, in a repository made from the project's files: `identical`
    (head changes only README.md), `popularity` (02_tune and 03_train default to algorithm
    popularity), `markdown` (head changes one markdown cell) and `broken` (a notebook raises)."""
    root = tmp_path_factory.mktemp("report")
    repo = root / "repo"
    for path in _git(repo_root, "ls-files").splitlines():
        if (repo_root / path).is_file():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo_root / path, repo / path)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    commits = {"base": _commit(repo, "the project")}
    with (repo / "README.md").open("a") as readme:
        readme.write("\nA line of documentation.\n")
    commits["identical"] = _commit(repo, "README only")
    _git(repo, "checkout", "--quiet", "-b", "popularity", commits["base"])
    for notebook in ("02_tune", "03_train"):
        _edit_notebook(
            repo / f"notebooks/{notebook}.ipynb",
            'algorithm = \\"cooccurrence\\"',
            'algorithm = \\"popularity\\"',
        )
    commits["popularity"] = _commit(repo, "popularity by default")
    _git(repo, "checkout", "--quiet", "-b", "markdown", commits["base"])
    _edit_notebook(repo / "notebooks/01_explore_data.ipynb", "# 01 ", "# 01 (a reworded title) ")
    commits["markdown"] = _commit(repo, "a markdown cell")
    _git(repo, "checkout", "--quiet", "-b", "broken", commits["base"])
    _edit_notebook(
        repo / "notebooks/01_explore_data.ipynb",
        '"from pathlib import Path\\n",',
        '"raise RuntimeError(\\"broken on purpose\\")\\n",',
    )
    commits["broken"] = _commit(repo, "a notebook that fails")
    environment = {
        **os.environ,
        "SHOPREC_PROJECT_DIR": str(repo),
        "SHOPREC_CACHE_DIR": str(root / "cache"),
    }

    def start(name: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "shoprec.cli", "report", *SMOKE, "--check"]
        command += ["--base", commits["base"], "--head", commits[name], "--out", str(root / name)]
        return subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    found = {}

    def finish(name: str, process: subprocess.Popen) -> None:
        output, _ = process.communicate(timeout=900)
        report = json.loads((root / name / "report.json").read_text())
        found[name] = {"exit": process.returncode, "output": output, "report": report,
                       "out": root / name, "repo": repo}  # fmt: skip

    finish("identical", start("identical"))  # base and head run at once; base is cached
    later = {name: start(name) for name in ("popularity", "markdown", "broken")}  # heads at once
    for name, process in later.items():
        finish(name, process)
    return found


@pytest.mark.notebook
@pytest.mark.xdist_group("report")
def test_identical_code_gives_delta_zero_and_no_significant_change_everywhere(reports):
    identical = reports["identical"]
    assert identical["exit"] == 0, identical["output"]
    report = identical["report"]
    assert not report["base"]["cached"] and not report["head"]["cached"]  # two real runs
    assert report["bootstrap"]["method"] == "paired"
    assert set(report["metrics"]) == set(METRICS)
    for name, found in report["metrics"].items():
        assert (found["delta"], found["low"], found["high"]) == (0, 0, 0), name
        assert found["verdict"] == NO_CHANGE
        assert found["base"] == found["head"] > 0
    for name, curve in report["curves"].items():
        assert curve["k"] == list(range(1, 21)) and set(curve["delta"]) == {0}, name
    assert set(report["segments"]) == {SHORT, LONG, HEAD, TAIL}
    for segment in report["segments"].values():
        assert {found["verdict"] for found in segment["metrics"].values()} == {NO_CHANGE}
    assert report["gate"]["passed"] is True
    assert report["changed"]["parameters"] == [] and report["changed"]["notebooks"] == []
    assert report["changed"]["modules"] == [] and report["changed"]["lock"]["changed"] is False
    assert report["changed"]["other_files"] == ["README.md"]
    assert report["changed"]["model"]["hyperparameters"] == []
    assert report["notes"] == []  # the report's metrics agree with each side's evaluation.json
    worktrees = _git(identical["repo"], "worktree", "list", "--porcelain")
    assert worktrees.count("worktree ") == 1  # each side's worktree is gone
    evaluation = report["gate"]["checks"][0]["value"]
    assert report["metrics"]["ndcg"]["head"] == pytest.approx(evaluation, abs=1e-6)


@pytest.mark.notebook
@pytest.mark.xdist_group("report")
def test_a_popularity_head_is_worse_on_ndcg_and_fails_the_gate(reports):
    popularity = reports["popularity"]
    report = popularity["report"]
    assert report["base"]["cached"] is True and report["head"]["cached"] is False
    ndcg = report["metrics"]["ndcg"]
    assert ndcg["verdict"] == WORSE and ndcg["low"] <= ndcg["delta"] <= ndcg["high"] < 0
    assert report["gate"]["passed"] is False
    assert [check["passed"] for check in report["gate"]["checks"]] == [True, False]
    changed = {(row["notebook"], row["name"]): row for row in report["changed"]["parameters"]}
    for notebook in ("02_tune", "03_train"):
        assert changed[(notebook, "algorithm")]["base"] == "cooccurrence"
        assert changed[(notebook, "algorithm")]["head"] == "popularity"
    assert popularity["exit"] == 1  # --check: a failed gate
    markdown = (popularity["out"] / "report.md").read_text()
    assert "**would not pass** the deploy gate" in markdown and "**worse**" in markdown
    assert report["changed"]["model"]["algorithm"] == {"base": "cooccurrence", "head": "popularity"}


@pytest.mark.notebook
@pytest.mark.xdist_group("report")
def test_a_markdown_only_head_reuses_the_cached_base_and_changes_no_metric(reports):
    markdown = reports["markdown"]
    report = markdown["report"]
    assert markdown["exit"] == 0, markdown["output"]
    assert report["base"]["cached"] is True
    assert report["base"]["run_id"] == reports["identical"]["report"]["base"]["run_id"]
    assert "cached" in markdown["output"].splitlines()[0]
    assert {found["verdict"] for found in report["metrics"].values()} == {NO_CHANGE}
    assert {found["delta"] for found in report["metrics"].values()} == {0}
    assert report["changed"]["parameters"] == []
    [notebook] = report["changed"]["notebooks"]
    assert notebook["path"] == "notebooks/01_explore_data.ipynb"
    page = (markdown["out"] / notebook["diff_page"]).read_text()
    assert "a reworded title" in page
    for plot in report["plots"]:
        assert (markdown["out"] / plot).read_bytes().startswith(b"\x89PNG")


@pytest.mark.notebook
@pytest.mark.xdist_group("report")
def test_a_head_whose_pipeline_fails_gets_a_report_saying_so(reports):
    broken = reports["broken"]
    assert broken["exit"] == 1
    assert "the pipeline failed" in broken["output"] and "broken on purpose" in broken["output"]
    markdown = (broken["out"] / "report.md").read_text()
    assert "No report: a side failed" in markdown and "01_explore_data" in markdown
    assert "broken on purpose" in broken["report"]["error"]
    assert (broken["out"] / "logs" / "head-pipeline.log").is_file()


@pytest.mark.notebook
@pytest.mark.xdist_group("report")
def test_a_report_stopped_by_sigterm_leaves_no_worktree_and_no_pipeline(reports, tmp_path: Path):
    repo = reports["identical"]["repo"]
    environment = {
        **os.environ,
        "SHOPREC_PROJECT_DIR": str(repo),
        "SHOPREC_CACHE_DIR": str(tmp_path / "cache"),
        "TMPDIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "shoprec.cli", "report", *SMOKE, "--base", "main"]
    command += ["--head", "markdown", "--out", str(tmp_path / "out")]
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True) as report:
        for line in report.stdout:  # both sides start (nothing is cached here)
            if line.startswith("head ") and "running the pipeline" in line:
                break
        log_path = tmp_path / "out" / "logs" / "head-pipeline.log"
        deadline = time.monotonic() + 120
        while not (log_path.is_file() and log_path.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.1)  # the head's pipeline has started and said so in its log
        report.send_signal(signal.SIGTERM)
        assert report.wait(timeout=120) == 128 + signal.SIGTERM
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not list(tmp_path.glob("shoprec-report-*"))  # the sides' workspace is gone
    log = log_path.read_text()
    assert "succeeded" not in log  # the pipeline was stopped, not left to run
