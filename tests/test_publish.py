"""synthaug.io.publish: destination checks, lock, stale leftovers, atomic publish under injected faults.

Faults are injected by replacing one publish step (`_exchange`, `_move_aside`, `_move_in`, `_rename_new`,
`_remove_tree`) with a function that raises, calls os._exit, or waits to be killed with SIGKILL, just
before or just after the real step. Nothing here depends on timing.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthaug.errors import BadInput
from synthaug.io import publish
from synthaug.io.publish import check_destination, check_output_file, is_synthaug_output, staged

ROOT = Path(__file__).resolve().parent.parent
OLD = {
    "manifest.json": json.dumps({"producer": "synthaug", "run": "old"}),
    "data/part-00000.parquet": "old rows " * 50,
    "model/weights.pt": "old weights",
}
NEW = {
    "manifest.json": json.dumps({"producer": "synthaug", "run": "new"}),
    "data/part-00000.parquet": "new rows " * 40,
    "data/part-00001.parquet": "more new rows",
    "report.json": "{}",
}


def write_tree(path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)


def tree(path: Path) -> dict[str, str] | None:
    """Every file under path by relative name (None if path is missing): the whole old or new output?"""
    if not os.path.lexists(path):
        return None
    return {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under root, hidden ones included: files by content, symlinks by target."""
    seen: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            rel = p.relative_to(root).as_posix()
            seen[rel] = ("link", os.readlink(p)) if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return seen


def siblings(dest: Path) -> set[str]:
    return {p.name for p in dest.parent.iterdir()}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """cwd = a project with a CSV, a Parquet folder, a pipeline file, a symlink and a previous synthaug run."""
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path, {"data/penguins.csv": "species,mass\nAdelie,3750\n", "pipelines/p.yaml": "name: p\n"})
    write_tree(tmp_path, {"data/parts/part-0.parquet": "PAR1 zero", "data/parts/part-1.parquet": "PAR1 one"})
    write_tree(tmp_path / "out" / "run", {**OLD, "model/generator.json": "{}"})
    (tmp_path / "link").symlink_to(tmp_path / "data" / "parts")
    return tmp_path


def refused(dest, **kwargs) -> str:
    """staged() must refuse before yielding, and write nothing at all (not even its lock)."""
    before = snapshot(Path.cwd())
    with pytest.raises(BadInput) as err:
        with staged(dest, **kwargs):
            pytest.fail("staged() yielded for a destination it must refuse")
    assert snapshot(Path.cwd()) == before  # inputs byte-identical, no lock or staging folder
    message = str(err.value)
    assert "\n" not in message and f"{kwargs.get('key', 'output.dir')} '" in message
    return message


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    "dest, kwargs, message",
    [
        # the destination overlaps an input: refused even with --overwrite
        (
            "data",
            {"inputs": {"source": "data/penguins.csv"}},
            r"'data' contains the source 'data/penguins.csv'; choose an output folder outside your inputs",
        ),
        ("data/parts/out", {"inputs": {"source": "data/parts"}}, r"'data/parts/out' sits inside the source 'data/parts'"),
        ("data/parts", {"inputs": {"source": "data/parts"}}, r"is the source 'data/parts'"),
        ("pipelines", {"inputs": {"pipeline file": "pipelines/p.yaml"}}, r"contains the pipeline file 'pipelines/p.yaml'"),
        ("out/run/model", {"inputs": {"model": "out/run/model"}}, r"is the model 'out/run/model'"),
        ("out/run", {"inputs": {"model": "out/run/model"}}, r"contains the model"),  # a synthaug output: only this rule saves it
        ("out/../data/parts/../parts", {"inputs": ["data/parts"]}, r"is the input 'data/parts'"),
        ("link/out", {"inputs": ["data/parts"]}, r"'link/out' sits inside the input"),  # link -> data/parts
        (
            "pipelines/p.yaml",
            {"key": "--out", "inputs": {"synthetic data": "pipelines"}},
            r"--out 'pipelines/p.yaml' sits inside the synthetic data",
        ),
        # paths that name no folder of their own
        (".", {}, r"output.dir '\.' names no folder of its own \(it is /"),
        ("x/..", {}, r"names no folder of its own"),
        ("..", {}, r"names no folder of its own"),
        ("", {}, r"names no folder of its own"),
        ("/", {}, r"'/' is the filesystem root; choose a folder inside it"),
        # what is there already
        ("data/penguins.csv", {}, r"is a file, not a folder; choose another output.dir"),
        ("link", {}, r"'link' is a symbolic link to .*data/parts; set output.dir to the real folder"),
        ("out/run", {"overwrite": False}, r"exists and is not empty; pass --overwrite or choose another output.dir"),
        ("pipelines", {}, r"does not look like a synthaug output .*; empty it yourself or choose another output.dir"),
        ("data/penguins.csv/out", {}, r"cannot be made: .*penguins.csv is a file"),
    ],
)
def test_refuses_destinations(project, dest, kwargs, message):
    got = refused(dest, **{"overwrite": True, **kwargs})
    assert re.search(message, got), got


def test_unrelated_input_does_not_block(project):
    assert check_destination("out/run", inputs=["link/part-0.parquet", "pipelines/p.yaml"], overwrite=True) == project / "out/run"


def test_a_single_path_counts_as_one_input(project):
    with pytest.raises(BadInput, match="contains the input 'data/penguins.csv'"):
        check_destination("data", inputs="data/penguins.csv", overwrite=True)


def test_normalises_dots_and_parent_symlinks(project):
    # `..` after a symlink is resolved on the real path (data/parts/..), not by cutting text.
    assert check_destination("link/../new") == project / "data" / "new"
    assert check_destination("out/./run/", overwrite=True) == project / "out" / "run"


@pytest.mark.skipif(not os.path.ismount("/proc"), reason="needs /proc as a mount point")
def test_refuses_a_mount_point():
    with pytest.raises(BadInput, match=r"output.dir '/proc' is a mount point and cannot be replaced"):
        check_destination("/proc", overwrite=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_refuses_an_unwritable_parent_by_chmod(project):
    (project / "ro").mkdir()
    (project / "ro").chmod(0o555)
    try:
        assert "no write permission in" in refused("ro/out/x")
    finally:
        (project / "ro").chmod(0o755)


def test_refuses_an_unwritable_parent(project, monkeypatch):
    # The same through os.access, so the rule is tested when the suite runs as root too.
    (project / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == project / "ro" else real_access(p, mode))
    assert re.search(r"'ro/out/x' cannot be written: no write permission in .*/ro;", refused("ro/out/x"))


def test_refuses_another_users_destination_in_a_sticky_folder(project, monkeypatch):
    sticky = project / "shared"
    (sticky / "out").mkdir(parents=True)
    owner = (sticky / "out").stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # we are someone else (works as root too)
    sticky.chmod(0o777)
    assert check_destination("shared/out") == sticky / "out"  # no sticky bit: others may rename it
    sticky.chmod(0o1777 | stat.S_ISVTX)
    assert "belongs to another user in the sticky folder" in refused("shared/out")


# ---------------------------------------------------------------------------------------------
# Overwrite and what counts as a synthaug output


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"manifest.json": json.dumps({"producer": "synthaug"})}, True),
        ({"manifest.json": json.dumps({"seed": 0, "shards": []}), "data/part-00000.parquet": "x"}, True),  # legacy run/sample
        ({"report.json": json.dumps({"gates": [], "passed": True}), "junit.xml": "<x/>"}, True),  # legacy validate
        ({"manifest.json": json.dumps({"producer": "someone else", "seed": 1})}, False),
        ({"manifest.json": json.dumps({"seed": 0})}, False),
        ({"manifest.json": json.dumps([{"seed": 0, "shards": []}])}, False),
        ({"manifest.json": "{not json"}, False),
        ({"manifest.json": json.dumps({"x": 1}), "report.json": json.dumps({"gates": [], "passed": True}), "junit.xml": ""}, False),
        ({"report.json": json.dumps({"gates": [], "passed": True})}, False),  # no junit.xml
        ({"src/main.py": "print()", "README.md": "# project"}, False),
        ({}, False),
    ],
)
def test_is_synthaug_output(tmp_path, files, expected):
    (tmp_path / "d").mkdir()
    write_tree(tmp_path / "d", files)
    assert is_synthaug_output(tmp_path / "d") is expected


@pytest.mark.parametrize("manifest", [{"producer": "synthaug"}, {"seed": 3, "shards": [], "rows": 0}])
def test_overwrite_replaces_a_previous_synthaug_output(project, manifest):
    inputs = snapshot(project / "data")
    (project / "out/run/manifest.json").write_text(json.dumps(manifest))
    with staged("out/run", inputs={"source": "data/parts", "holdout": None}, overwrite=True) as stage:
        write_tree(stage.path, NEW)
        assert stage.publish() == project / "out/run"
        assert not stage.path.exists()  # the old output, swapped to the staging path, is gone at once
    assert tree(project / "out/run") == NEW
    assert siblings(project / "out/run") == {"run", ".run.lock"}
    assert snapshot(project / "data") == inputs


def test_an_empty_folder_needs_no_overwrite(project):
    (project / "empty").mkdir()
    with staged("empty") as stage:
        write_tree(stage.path, NEW)
        stage.publish()
    assert tree(project / "empty") == NEW


def test_publish_into_a_missing_folder(project):
    with staged("new/deep/out") as stage:
        assert stage.path.parent == project / "new/deep" and stage.path.name.startswith(".out.staging-")
        write_tree(stage.path, NEW)
        assert stage.publish() == project / "new/deep/out"
        with pytest.raises(RuntimeError, match="already published"):
            stage.quarantine()
    assert tree(project / "new/deep/out") == NEW
    assert siblings(project / "new/deep/out") == {"out", ".out.lock"}


def test_quarantine_never_touches_the_destination(project):
    with staged("out/run", overwrite=True) as stage:
        write_tree(stage.path, NEW)
        where = stage.quarantine()
    assert where.parent == project / "out/_quarantine"
    assert re.fullmatch(r"run-\d{8}T\d{6}Z-[0-9a-f]{6}", where.name)
    assert tree(where) == NEW and tree(project / "out/run") == {**OLD, "model/generator.json": "{}"}
    assert siblings(project / "out/run") == {"run", "_quarantine", ".run.lock"}


def test_quarantine_refuses_to_add_to_an_input(project):
    # e.g. `synthaug validate --synthetic out/_quarantine`: a new quarantined run would change that input.
    (project / "out/_quarantine/old-run").mkdir(parents=True)
    with staged("out/run", inputs={"synthetic data": "out/_quarantine"}, overwrite=True) as stage:
        with pytest.raises(BadInput, match=r"the quarantine folder .* sits inside the synthetic data 'out/_quarantine'"):
            stage.quarantine()
    assert snapshot(project / "out/_quarantine") == {"old-run": "dir"}


class Interrupt(BaseException):
    """Like KeyboardInterrupt: not an Exception."""


@pytest.mark.parametrize("error", [None, RuntimeError, KeyboardInterrupt, Interrupt, BadInput])
def test_leaving_the_block_without_publishing_removes_staging(project, error):
    before = tree(project / "out/run")
    with pytest.raises(error) if error else _nothing():
        with staged("out/run", overwrite=True) as stage:
            write_tree(stage.path, NEW)
            if error:
                raise error("stop")
    assert not stage.path.exists() and tree(project / "out/run") == before
    assert siblings(project / "out/run") == {"run", ".run.lock"}
    with staged("out/run", overwrite=True):  # the lock was released
        pass


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_publish_checks_the_destination_again(project):
    with staged("out/run", overwrite=True) as stage:
        write_tree(stage.path, NEW)
        # Meanwhile someone puts a project where the old run was ...
        publish._remove_tree(project / "out/run")
        write_tree(project / "out/run", {"src/main.py": "precious"})
        with pytest.raises(BadInput, match="does not look like a synthaug output"):
            stage.publish()
    assert tree(project / "out/run") == {"src/main.py": "precious"}
    assert siblings(project / "out/run") == {"run", ".run.lock"}


def test_a_full_disk_while_making_staging_is_bad_input(project, monkeypatch):
    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(publish, "_make_dir", full)
    with pytest.raises(
        BadInput,
        match=r"output.dir 'out/run': cannot create the staging folder .*/out/\.run\.staging-[0-9a-f]+ "
        r"\(No space left on device\); free some space",
    ):
        with staged("out/run", overwrite=True):
            pytest.fail("no stage without a staging folder")
    monkeypatch.undo()
    assert siblings(project / "out/run") == {"run", ".run.lock"}
    with staged("out/run", overwrite=True):  # the lock was released
        pass


@pytest.mark.parametrize("step", ["_exchange", "_move_in"])
def test_an_os_error_while_publishing_is_bad_input(project, monkeypatch, step):
    if step == "_move_in":
        monkeypatch.setattr(publish, "_exchange", _unsupported)

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = tree(project / "out/run")
    with pytest.raises(BadInput, match=r"output.dir 'out/run': cannot publish to .*/out/run \(No space left on device\)"):
        with staged("out/run", overwrite=True) as stage:
            write_tree(stage.path, NEW)
            monkeypatch.setattr(publish, step, full)
            stage.publish()
    assert tree(project / "out/run") == before
    assert siblings(project / "out/run") == {"run", ".run.lock"}


def test_output_file_checks(project):
    def refused_file(out, **kwargs):
        with pytest.raises(BadInput) as err:
            check_output_file(out, **kwargs)
        return str(err.value)

    assert "--out 'data/penguins.csv' is the source 'data/penguins.csv'" in refused_file(
        "data/penguins.csv", inputs={"source": "data/penguins.csv"}, overwrite=True
    )
    assert "--out 'data/parts/schema.json' sits inside the source 'data/parts'" in refused_file(
        "data/parts/schema.json", inputs={"source": "data/parts"}
    )
    (project / "alias.csv").symlink_to(project / "data/penguins.csv")
    assert "is the input 'data/penguins.csv'" in refused_file("alias.csv", inputs=["data/penguins.csv"], overwrite=True)
    assert "exists; pass --overwrite or choose another --out" in refused_file("pipelines/p.yaml")
    assert "--out 'data' is a folder, not a file" in refused_file("data", overwrite=True)
    assert "names no folder of its own" in refused_file(".")
    assert check_output_file("schema.json", inputs=["data/penguins.csv"]) == project / "schema.json"
    assert check_output_file("pipelines/p.yaml", overwrite=True) == project / "pipelines/p.yaml"


# ---------------------------------------------------------------------------------------------
# Faults in the middle of publish


def _unsupported(*args):
    raise OSError(errno.EINVAL, "RENAME_EXCHANGE is not supported here (forced fallback)")


class Crash(BaseException):
    """An injected fault that nothing in publish.py may swallow."""


def _run_dest(project: Path, mode: str) -> Path:
    dest = project / "out" / "run"
    if mode == "new":
        publish._remove_tree(dest)
    else:
        write_tree(dest, OLD)
        (dest / "model/generator.json").unlink()
    return dest


# (mode, step, when) -> what dest holds right after the fault, with the process still alive
IN_PROCESS = {
    ("exchange", "_exchange", "before"): OLD,
    ("exchange", "_exchange", "after"): NEW,
    ("exchange", "_remove_tree", "before"): NEW,
    ("fallback", "_move_aside", "before"): OLD,
    ("fallback", "_move_aside", "after"): OLD,  # put back at once
    ("fallback", "_move_in", "before"): OLD,  # put back at once
    ("fallback", "_move_in", "after"): NEW,
    ("fallback", "_remove_tree", "before"): NEW,
    ("new", "_rename_new", "before"): None,
    ("new", "_rename_new", "after"): NEW,
}


@pytest.mark.parametrize("mode, step, when", list(IN_PROCESS), ids=["-".join(k) for k in IN_PROCESS])
def test_a_fault_in_publish_leaves_the_old_or_the_new_output(project, monkeypatch, mode, step, when):
    dest = _run_dest(project, mode)
    with monkeypatch.context() as m:
        if mode == "fallback":
            m.setattr(publish, "_exchange", _unsupported)
        real = getattr(publish, step)

        def faulty(*args):
            if when == "after":
                real(*args)
            raise Crash(f"{when} {step}")

        with pytest.raises(Crash):
            with staged(dest, overwrite=True) as stage:
                write_tree(stage.path, NEW)
                m.setattr(publish, step, faulty)  # the exit handler runs with the fault still in place
                stage.publish()
    expected = IN_PROCESS[(mode, step, when)]
    assert tree(dest) == expected
    _next_run_cleans_up(dest, expected)


def _next_run_cleans_up(dest: Path, expected) -> None:
    leftovers = {n for n in siblings(dest) if n.startswith(".run.") and n != ".run.lock"}
    messages: list[str] = []
    with staged(dest, overwrite=True, log=messages.append):
        assert tree(dest) == expected
    assert tree(dest) == expected
    assert siblings(dest) == ({"run"} if expected is not None else set()) | {".run.lock"}
    for name in leftovers:
        assert any(name in msg and ("removed stale" in msg or "restored" in msg) for msg in messages), (name, messages)


CHILD = r"""
import errno, json, os, sys, time
from pathlib import Path
from synthaug.io import publish

dest, mode, step, when, how, ready, files = json.loads(sys.argv[1])
if mode == "fallback":
    def unsupported(*args):
        raise OSError(errno.EINVAL, "forced fallback")
    publish._exchange = unsupported

def die():
    if how == "exit":
        os._exit(70)
    Path(ready).touch()  # the parent kills us with SIGKILL now
    time.sleep(600)

if step == "writing":
    with publish.staged(dest, overwrite=True) as stage:
        (stage.path / "data").mkdir()
        (stage.path / "data" / "part-00000.parquet").write_text("half a shard")
        die()
real = getattr(publish, step)
def crash(*args):
    if when == "after":
        real(*args)
    die()
setattr(publish, step, crash)
with publish.staged(dest, overwrite=True) as stage:
    for rel, text in files.items():
        (stage.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage.path / rel).write_text(text)
    stage.publish()
os._exit(0)
"""


def _child(script: str, args: list, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script, json.dumps(args)], env=env, **popen)


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    for _ in range(1200):  # a ready file, not a sleep, decides; this only bounds a broken child
        if path.exists():
            return
        assert proc.poll() is None, "the child exited early"
        time.sleep(0.05)
    raise AssertionError("the child never got ready")


# (mode, step, when) -> (dest right after the process dies, dest after the next staged())
CRASHED = {
    ("exchange", "_exchange", "before"): (OLD, OLD),
    ("exchange", "_exchange", "after"): (NEW, NEW),
    ("exchange", "_remove_tree", "before"): (NEW, NEW),
    ("fallback", "_move_aside", "before"): (OLD, OLD),
    ("fallback", "_move_aside", "after"): (None, OLD),  # the documented fallback window: restored next time
    ("fallback", "_move_in", "before"): (None, OLD),  # same window
    ("fallback", "_move_in", "after"): (NEW, NEW),
    ("fallback", "_remove_tree", "before"): (NEW, NEW),
    ("new", "_rename_new", "before"): (None, None),
    ("new", "_rename_new", "after"): (NEW, NEW),
}
KILLED = [("exchange", "_exchange", "after"), ("fallback", "_move_aside", "after"), ("exchange", "writing", "")]


@pytest.mark.parametrize(
    "how, mode, step, when",
    [("exit", *k) for k in CRASHED] + [("kill", *k) for k in KILLED],
    ids=[f"exit-{'-'.join(k)}" for k in CRASHED] + [f"kill9-{'-'.join(k)}" for k in KILLED],
)
def test_a_killed_process_leaves_the_old_or_the_new_output(project, how, mode, step, when):
    dest = _run_dest(project, mode)
    ready = project / "ready"
    proc = _child(CHILD, [str(dest), mode, step, when, how, str(ready), NEW])
    if how == "kill":
        _wait_for(ready, proc)
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=120) == (-signal.SIGKILL if how == "kill" else 70)
    right_after, after_next_run = CRASHED.get((mode, step, when), (OLD, OLD))
    assert tree(dest) == right_after
    if right_after is None and mode != "new":
        assert any(n.startswith(".run.old-") for n in siblings(dest))  # the old output is only set aside
    _next_run_cleans_up(dest, after_next_run)


HOLDER = r"""
import json, sys
from pathlib import Path
from synthaug.io import publish

dest, ready = json.loads(sys.argv[1])
with publish.staged(dest, overwrite=True) as stage:
    Path(ready).touch()
    sys.stdin.read()  # hold the lock until the parent closes our stdin
"""


def test_a_second_run_on_the_same_destination_fails_at_once(project):
    with staged("out/run", overwrite=True) as first:
        with pytest.raises(
            BadInput,
            match=r"another synthaug run is writing to output.dir 'out/\./run' .*; wait for it to finish or choose another output.dir",
        ):
            with staged("out/./run", overwrite=True):
                pytest.fail("two runs on one destination")
        assert first.path.is_dir()  # the refused run did not clean the live run's staging folder
    with staged("out/run", overwrite=True) as again:
        write_tree(again.path, NEW)
        again.publish()
    assert tree(project / "out/run") == NEW


def test_a_lock_held_by_another_process_blocks(project):
    ready = project / "ready"
    proc = _child(HOLDER, [str(project / "out/run"), str(ready)], stdin=subprocess.PIPE)
    try:
        _wait_for(ready, proc)
        [staging] = [n for n in siblings(project / "out/run") if n.startswith(".run.staging-")]
        with pytest.raises(BadInput, match="another synthaug run is writing to"):
            with staged("out/run", overwrite=True):
                pytest.fail("two runs on one destination")
        assert staging in siblings(project / "out/run")  # not taken for a stale leftover
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    with staged("out/run", overwrite=True) as stage:
        write_tree(stage.path, NEW)
        stage.publish()
    assert tree(project / "out/run") == NEW


def test_stale_leftovers_are_reported_and_removed(project):
    out = project / "out"
    for name in [".run.staging-0123456789ab", ".run.old-00112233aabb", ".run.staging-deadbeef"]:
        write_tree(out / name, {"x": name})
    keep = [
        ".run2.staging-0123456789ab",
        ".run.staging-notahex",
        ".run.staging-0123456789ab.staging-0123456789ab",
        "run.staging-0123456789ab",
    ]
    for name in keep:
        write_tree(out / name, {"x": name})
    messages: list[str] = []
    with staged("out/run", overwrite=True, log=messages.append):
        pass
    assert siblings(out / "run") == {"run", ".run.lock", *keep}
    assert tree(out / "run") == {**OLD, "model/generator.json": "{}"}
    assert sum("removed stale staging folder" in m for m in messages) == 2
    assert sum("removed stale previous output" in m for m in messages) == 1


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_missing_destination_is_restored_from_its_old_folder(project, overwrite):
    out = project / "out"
    (out / "run").rename(out / ".run.old-00112233aabb")
    write_tree(out / ".run.staging-0123456789ab", NEW)  # complete or not: it was never published
    messages: list[str] = []
    if overwrite:
        with staged("out/run", overwrite=True, log=messages.append):
            assert tree(out / "run") == {**OLD, "model/generator.json": "{}"}
    else:
        with pytest.raises(BadInput, match="exists and is not empty; pass --overwrite"):
            with staged("out/run", log=messages.append):
                pytest.fail("the restored output is not empty")
    assert tree(out / "run") == {**OLD, "model/generator.json": "{}"}
    assert siblings(out / "run") == {"run", ".run.lock"}
    assert any("restored" in m and ".run.old-00112233aabb" in m for m in messages)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux only")
def test_renameat2_through_libc_and_through_the_raw_syscall(tmp_path):
    syscall = publish._syscall_renameat2(ctypes.CDLL(None, use_errno=True))
    if syscall is None:
        pytest.skip("no renameat2 syscall number for this machine")
    for function in (publish._renameat2_function(), syscall):
        write_tree(tmp_path / "a", {"f": "a"})
        write_tree(tmp_path / "b", {"f": "b"})
        assert function(-100, os.fsencode(tmp_path / "a"), -100, os.fsencode(tmp_path / "b"), 2) == 0
        assert tree(tmp_path / "a") == {"f": "b"} and tree(tmp_path / "b") == {"f": "a"}
        publish._remove_tree(tmp_path / "a")
        publish._remove_tree(tmp_path / "b")
