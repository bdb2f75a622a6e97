"""Staging, locking, atomic publish and quarantine of an output folder.

Every command that writes a folder (run, sample, validate) goes through one context manager::

    with staged(dest, inputs={"source": src, "pipeline file": yaml}, overwrite=overwrite, log=log) as stage:
        ...                       # write everything into stage.path
        stage.publish()           # or stage.quarantine() when a gate failed

``staged(dest, *, inputs=(), overwrite=False, key="output.dir", log=..., wait=0.0)``

1. checks ``dest`` (exactly what ``check_destination`` does alone, e.g. for a dry run) before any work;
2. takes the lock ``<parent>/.<name>.lock`` (filelock; the file itself stays, as is normal for it). A
   second run on the same destination fails at once with BadInput (or after ``wait`` seconds);
3. cleans what dead runs left beside ``dest`` (a live run would hold the lock): ``.<name>.staging-<hex>``
   and ``.<name>.old-<hex>`` folders are deleted and reported through ``log``, except that when ``dest``
   is missing and an ``.old`` folder exists (a fallback-mode publish was killed), it is renamed back;
4. checks ``dest`` again and makes the hidden staging folder ``<parent>/.<name>.staging-<hex>``;
5. yields a ``Stage``: ``stage.path`` is the staging folder, ``stage.publish()`` atomically replaces
   ``dest`` (re-checking it first) and ``stage.quarantine()`` moves the staging folder to
   ``<parent>/_quarantine/<name>-<UTC stamp>-<hex>/`` without touching ``dest``.

Leaving the block without publish/quarantine (normal exit or any exception, KeyboardInterrupt
included) deletes the staging folder; the lock is released on exit. Every refusal and every OS error
(full disk, permissions) raises BadInput with one line naming the path and the key (``output.dir``,
``--out``) and what to do. ``check_output_file`` is the same kind of check for a command that writes
one file (``synthaug schema --out FILE``).

Destination rules (``check_destination``):

- the path is normalised first: absolute, ``..`` and the parents' symlinks resolved. A path without a
  name of its own (``.``, ``x/..``, ``""``), the filesystem root, a mount point and a symlink are refused;
- it may not be, contain or sit inside any input (source file or folder, model, pipeline file, schema,
  synthetic data), compared by real path and by file identity (bind mounts, case-insensitive disks);
- an existing file is refused; an existing non-empty folder needs ``overwrite``, and even then is
  replaced only if ``is_synthaug_output`` says synthaug wrote it. Empty folders are fine;
- the nearest existing parent must be a writable folder, and a destination owned by someone else in
  a sticky folder (``/tmp``) is refused, since it could not be renamed away.

``is_synthaug_output``: ``manifest.json`` is a JSON object with ``"producer": "synthaug"``. Outputs
from before that field are accepted too, narrowly: a manifest object with both ``"shards"`` and
``"seed"`` (``run`` and ``sample``), or, without a manifest, a ``report.json`` object with ``"gates"``
and ``"passed"`` next to ``junit.xml`` (``validate``).

Publishing (at every instant the destination is the whole old output or the whole new one):

- ``dest`` missing: one rename (``renameat2(RENAME_NOREPLACE)``, else ``os.rename``);
- ``dest`` exists, on Linux: ``renameat2(RENAME_EXCHANGE)`` swaps staging and ``dest`` in one step; the
  old output, now at the staging path, is then deleted. If the process dies before that, the next
  ``staged()`` on ``dest`` deletes it;
- fallback, where RENAME_EXCHANGE is missing (not Linux, or the filesystem answers EINVAL, ENOSYS or
  EOPNOTSUPP): rename ``dest`` to ``.<name>.old-<hex>``, rename staging to ``dest``, delete the old
  folder. Between the two renames ``dest`` is missing: if the second rename fails, the old folder is
  renamed back at once; if the process is killed there, the next ``staged()`` on ``dest`` restores it.

Each step is a module-level function (``_exchange``, ``_rename_new``, ``_move_aside``, ``_move_in``,
``_remove_tree``, ``_make_dir``) so tests can inject faults. "Atomic" is against a killed process:
file contents are not fsynced, so a power cut may still lose the newest writes.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from filelock import FileLock, Timeout

from synthaug.errors import BadInput

QUARANTINE = "_quarantine"
MANIFEST = "manifest.json"
PRODUCER = "synthaug"  # writers put {"producer": PRODUCER} in manifest.json

PathLike = str | os.PathLike
Inputs = PathLike | Sequence[PathLike] | Mapping[str, PathLike | None]  # a mapping names them: {"source": ...}
Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Checks


def check_destination(dest: PathLike, *, inputs: Inputs = (), overwrite: bool = False, key: str = "output.dir") -> Path:
    """Refuse (BadInput) a folder destination that could not or must not be replaced; return it normalised."""
    path = _normalise(dest, key)
    _check_folder(path, _shown(dest, key), key, inputs, overwrite)
    return path


def check_output_file(out: PathLike, *, inputs: Inputs = (), overwrite: bool = False, key: str = "--out") -> Path:
    """The same checks for a command that writes one file; return it normalised."""
    path = _normalise(out, key)
    shown = _shown(out, key)
    conflict = _input_conflict(Path(os.path.realpath(path)), inputs)  # a symlinked file is judged by its target
    if conflict:
        raise BadInput(f"{shown} {conflict}; write it outside your inputs")
    _check_parent(path, shown, key)
    if os.path.lexists(path):
        if path.is_dir():
            raise BadInput(f"{shown} is a folder, not a file; choose another {key}")
        if not overwrite:
            raise BadInput(f"{shown} exists; pass --overwrite or choose another {key}")
        if not os.access(path, os.W_OK):
            raise BadInput(f"{shown} cannot be overwritten (no write permission); choose another {key}")
    return path


def is_synthaug_output(path: PathLike) -> bool:
    """True if `path` is a folder synthaug wrote (see the module docstring for the accepted shapes)."""
    path = Path(path)
    manifest = _json_object(path / MANIFEST)
    if manifest is not None:
        return manifest.get("producer") == PRODUCER or {"shards", "seed"} <= manifest.keys()
    if (path / MANIFEST).exists():
        return False  # a manifest that is not ours
    report = _json_object(path / "report.json")  # legacy `synthaug validate` output
    return report is not None and {"gates", "passed"} <= report.keys() and (path / "junit.xml").is_file()


def _json_object(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _shown(given: PathLike, key: str) -> str:
    return f"{key} '{os.fspath(given)}'"


def _normalise(given: PathLike, key: str) -> Path:
    """Absolute path with `..` and the parents' symlinks resolved; refuse paths that name no folder."""
    text = os.fspath(given)
    name = Path(text).name
    if name in ("", ".."):  # ".", "", "/", "x/..": renaming these would replace a parent, or cannot work
        where = os.path.realpath(text or ".")
        if where == os.path.realpath(os.sep):
            raise BadInput(f"{key} '{text}' is the filesystem root; choose a folder inside it, e.g. out/run")
        raise BadInput(f"{key} '{text}' names no folder of its own (it is {where}); choose a named folder, e.g. out/run")
    path = Path(os.path.realpath(Path(text).parent)) / name
    if os.path.ismount(path):
        raise BadInput(f"{key} '{text}' is a mount point and cannot be replaced; choose a folder inside it")
    return path


def _check_folder(path: Path, shown: str, key: str, inputs: Inputs, overwrite: bool) -> None:
    conflict = _input_conflict(path, inputs)
    if conflict:
        raise BadInput(f"{shown} {conflict}; choose an output folder outside your inputs")
    _check_parent(path, shown, key)
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise BadInput(f"{shown} is a symbolic link to {os.path.realpath(path)}; set {key} to the real folder instead")
    if not path.is_dir():
        raise BadInput(f"{shown} is a file, not a folder; choose another {key}")
    if _sticky_foreign(path):
        raise BadInput(
            f"{shown} belongs to another user in the sticky folder {path.parent}, so it cannot be replaced; choose another {key}"
        )
    try:
        empty = next(os.scandir(path), None) is None
    except OSError as exc:
        raise BadInput(f"{shown} cannot be read ({exc.strerror}); choose another {key}") from None
    if empty:
        return
    if not overwrite:
        raise BadInput(f"{shown} exists and is not empty; pass --overwrite or choose another {key}")
    if not is_synthaug_output(path):
        raise BadInput(
            f"{shown} is not empty and does not look like a synthaug output (no synthaug {MANIFEST}), so --overwrite "
            f"will not replace it; empty it yourself or choose another {key}"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise BadInput(f"{shown} cannot be replaced: no write permission in it; choose another {key}")


def _check_parent(path: Path, shown: str, key: str) -> None:
    """The nearest existing ancestor must be a folder we may create entries in."""
    ancestor = path.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BadInput(f"{shown} cannot be made: {ancestor} is a file; choose another {key}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise BadInput(f"{shown} cannot be written: no write permission in {ancestor}; choose another {key}")


def _sticky_foreign(path: Path) -> bool:
    """In a sticky folder only the owner of an entry (or of the folder) may rename it."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() == 0:
        return False
    parent = path.parent.stat()
    if not parent.st_mode & stat.S_ISVTX:
        return False
    return path.lstat().st_uid != geteuid() and parent.st_uid != geteuid()


def _labelled(inputs: Inputs) -> Iterator[tuple[str, PathLike]]:
    if isinstance(inputs, (str, os.PathLike)):  # one path, not a sequence of characters
        inputs = [inputs]
    items = inputs.items() if isinstance(inputs, Mapping) else (("input", p) for p in inputs)
    return ((label, p) for label, p in items if p is not None)


def _input_conflict(path: Path, inputs: Inputs) -> str | None:
    """How `path` overlaps an input ("is", "contains", "sits inside" it), or None."""
    for label, given in _labelled(inputs):
        real = Path(os.path.realpath(given))
        if real == path or _same_file(real, path):
            return f"is the {label} '{os.fspath(given)}'"
        if _inside(real, path):
            return f"contains the {label} '{os.fspath(given)}'"
        if _inside(path, real):
            return f"sits inside the {label} '{os.fspath(given)}'"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, parent: Path) -> bool:
    """Strictly inside, by path or by identity (bind mounts, case-insensitive disks)."""
    try:
        parent_stat = parent.stat()
    except OSError:
        parent_stat = None
    for ancestor in child.parents:
        if ancestor == parent:
            return True
        if parent_stat is not None:
            try:
                if os.path.samestat(ancestor.stat(), parent_stat):
                    return True
            except OSError:
                pass
    return False


def _os_error(shown: str, action: str, path: Path, exc: OSError, key: str) -> BadInput:
    hints = {
        errno.ENOSPC: "free some space",
        getattr(errno, "EDQUOT", errno.ENOSPC): "free some space",
        errno.EACCES: "fix the permissions",
        errno.EPERM: "fix the permissions",
        errno.EROFS: "use a writable disk",
    }
    hint = hints.get(exc.errno, "check the folder")
    return BadInput(f"{shown}: cannot {action} {path} ({exc.strerror or exc}); {hint} or choose another {key}")


# ---------------------------------------------------------------------------------------------
# The steps of a publish, one function each so that tests can inject faults between them.

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}  # Linux syscall numbers
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


@cache
def _renameat2_function() -> Callable[..., int] | None:
    """libc's renameat2 (glibc >= 2.28), else the raw syscall; None where Linux's renameat2 cannot exist."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        return _syscall_renameat2(libc)
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _syscall_renameat2(libc: ctypes.CDLL) -> Callable[..., int] | None:
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    if number is None:
        return None
    libc.syscall.restype = ctypes.c_long

    def renameat2(olddir: int, old: bytes, newdir: int, new: bytes, flags: int) -> int:
        return libc.syscall(
            ctypes.c_long(number),
            ctypes.c_int(olddir),
            ctypes.c_char_p(old),
            ctypes.c_int(newdir),
            ctypes.c_char_p(new),
            ctypes.c_uint(flags),
        )

    return renameat2


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    function = _renameat2_function()
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available on this system", str(src))
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(src), None, str(dst))


def _exchange(staging: Path, dest: Path) -> None:
    """Swap two existing folders in one step (Linux RENAME_EXCHANGE)."""
    _renameat2(staging, dest, _RENAME_EXCHANGE)


def _rename_new(src: Path, dst: Path) -> None:
    """Rename onto a path that does not exist; never replaces one that appeared meanwhile, where the OS can tell."""
    try:
        _renameat2(src, dst, _RENAME_NOREPLACE)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        os.rename(src, dst)


def _move_aside(dest: Path, old: Path) -> None:
    """Fallback step 1: the old output leaves dest (dest is missing from here ...)."""
    os.rename(dest, old)


def _move_in(staging: Path, dest: Path) -> None:
    """Fallback step 2: the new output takes its place (... to here)."""
    os.rename(staging, dest)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _make_dir(path: Path) -> None:
    path.mkdir()


# ---------------------------------------------------------------------------------------------
# The stage


@dataclass
class Stage:
    """A staging folder for one destination; see `staged`."""

    path: Path  # write here
    dest: Path  # normalised destination
    shown: str  # "output.dir 'out/x'", for messages
    key: str
    inputs: Inputs = field(repr=False)
    overwrite: bool = False
    log: Log = field(default=_quiet, repr=False)
    outcome: str | None = None  # "published" | "quarantined"

    def publish(self) -> Path:
        """Atomically make the staging folder the destination (re-checked first); return the destination."""
        self._still_open()
        _check_folder(self.dest, self.shown, self.key, self.inputs, self.overwrite)
        if not os.path.lexists(self.dest):
            try:
                _rename_new(self.path, self.dest)
            except OSError as exc:
                raise _os_error(self.shown, "publish to", self.dest, exc, self.key) from None
            self.outcome = "published"
            return self.dest
        try:
            _exchange(self.path, self.dest)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise _os_error(self.shown, "publish to", self.dest, exc, self.key) from None
            self._publish_by_two_renames()
            return self.dest
        self.outcome = "published"
        self._remove_old(self.path)  # the previous output now sits at the staging path
        return self.dest

    def quarantine(self) -> Path:
        """Move the staging folder to <parent>/_quarantine/<name>-<UTC stamp>-<hex>/; dest is not touched."""
        self._still_open()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.dest.parent / QUARANTINE / f"{self.dest.name}-{stamp}-{secrets.token_hex(3)}"
        conflict = _input_conflict(target, self.inputs)
        if conflict:
            raise BadInput(f"{self.shown}: the quarantine folder {target} {conflict}; choose another {self.key}")
        try:
            target.parent.mkdir(exist_ok=True)
            _rename_new(self.path, target)
        except OSError as exc:
            raise _os_error(self.shown, "quarantine the run in", target, exc, self.key) from None
        self.outcome = "quarantined"
        return target

    def _publish_by_two_renames(self) -> None:
        old = self.dest.parent / f".{self.dest.name}.old-{secrets.token_hex(6)}"
        try:
            _move_aside(self.dest, old)
            _move_in(self.path, self.dest)
        except BaseException as exc:
            self._put_back(old)  # the process is alive: do not leave dest missing
            if isinstance(exc, OSError):
                raise _os_error(self.shown, "publish to", self.dest, exc, self.key) from None
            raise
        self.outcome = "published"
        self._remove_old(old)

    def _put_back(self, old: Path) -> None:
        if os.path.lexists(self.dest) or not os.path.lexists(old):
            return
        try:
            _rename_new(old, self.dest)
        except OSError as exc:
            self.log(f"could not put the previous output back from {old} ({exc.strerror}); the next run on {self.dest} restores it")

    def _remove_old(self, old: Path) -> None:
        # Publishing has succeeded; a leftover is only wasted space, removed by the next run on dest.
        try:
            _remove_tree(old)
        except OSError as exc:
            self.log(f"could not remove the previous output {old} ({exc.strerror}); the next run on {self.dest} removes it")

    def _still_open(self) -> None:
        if self.outcome is not None:
            raise RuntimeError(f"{self.path} was already {self.outcome}")

    def _close(self) -> None:
        """On leaving the block: remove unpublished work, or the previous output an exchange left here."""
        if not os.path.lexists(self.path):
            return
        try:
            _remove_tree(self.path)
        except Exception as exc:  # never hide the block's own exception behind a cleanup error
            self.log(f"could not remove {self.path} ({exc}); the next run on {self.dest} removes it")


@contextmanager
def staged(
    dest: PathLike,
    *,
    inputs: Inputs = (),
    overwrite: bool = False,
    key: str = "output.dir",
    log: Log = _quiet,
    wait: float = 0.0,
) -> Iterator[Stage]:
    """Check dest, lock it, clean dead runs' leftovers, make a staging folder and yield a Stage (module docstring)."""
    path = check_destination(dest, inputs=inputs, overwrite=overwrite, key=key)
    shown = _shown(dest, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(shown, "create", path.parent, exc, key) from None
    with _locked(path, shown, key, wait):
        _clean_leftovers(path, shown, key, log)
        _check_folder(path, shown, key, inputs, overwrite)  # the state may have changed before we held the lock
        stage = Stage(path.parent / f".{path.name}.staging-{secrets.token_hex(6)}", path, shown, key, inputs, overwrite, log)
        try:
            try:
                _make_dir(stage.path)
            except OSError as exc:
                raise _os_error(shown, "create the staging folder", stage.path, exc, key) from None
            yield stage
        finally:
            stage._close()


@contextmanager
def _locked(path: Path, shown: str, key: str, wait: float) -> Iterator[None]:
    lock_path = path.parent / f".{path.name}.lock"
    lock = FileLock(lock_path, timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise BadInput(
            f"another synthaug run is writing to {shown} (lock {lock_path}); wait for it to finish or choose another {key}"
        ) from None
    except OSError as exc:
        raise _os_error(shown, "create the lock file", lock_path, exc, key) from None
    try:
        yield
    finally:
        lock.release()


def _leftovers(dest: Path) -> list[tuple[str, Path]]:
    """`.<name>.staging-<hex>` and `.<name>.old-<hex>` beside dest (exact names: never another destination's)."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(staging|old)-[0-9a-f]{{8,32}}")
    with os.scandir(dest.parent) as entries:
        found = [(m.group(1), Path(e.path)) for e in entries if (m := pattern.fullmatch(e.name))]
    return sorted(found)


def _clean_leftovers(dest: Path, shown: str, key: str, log: Log) -> None:
    """Called with the lock held, so every leftover belongs to a run that died."""
    leftovers = _leftovers(dest)
    olds = [p for kind, p in leftovers if kind == "old"]
    if olds and not os.path.lexists(dest):
        # A fallback publish was killed between its two renames: the newest old folder is the output.
        newest = max(olds, key=lambda p: p.lstat().st_ctime)
        try:
            _rename_new(newest, dest)
        except OSError as exc:
            raise _os_error(shown, "restore the previous output from", newest, exc, key) from None
        log(f"restored {dest} from {newest.name}, left by a run that was stopped while publishing")
        leftovers.remove(("old", newest))
    for kind, leftover in leftovers:
        what = "staging folder" if kind == "staging" else "previous output"
        try:
            _remove_tree(leftover)
        except OSError as exc:
            log(f"could not remove the stale {what} {leftover} ({exc.strerror})")
            continue
        log(f"removed stale {what} {leftover}, left by a run that was stopped")
