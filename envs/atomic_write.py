"""Writing files and folders so that a reader never sees half of one.

Every write goes to a temporary name in the destination's own folder (same filesystem, so the
final ``os.replace`` or ``rename`` is atomic) and is renamed into place only once complete; a
failure removes the temporary and leaves the destination as it was. One helper per shape of
output: a text, bytes or JSON file; a file some library writes to a path we give it
(``torch.save``); several files that must change together (a model card and its figures); a
whole folder (a checkpoint, a validation set).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_with(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Let `write` fill a temporary file next to `path` (e.g. ``lambda p: torch.save(x, p)``),
    then move it into place."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` all at once."""
    write_with(path, lambda p: p.write_bytes(data))


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` all at once."""
    write_with(path, lambda p: p.write_text(text))


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON (numpy scalars as floats) all at once."""
    write_text(path, json.dumps(data, indent=1, default=float))


def write_files(folder: str | Path, files: Mapping[str, str | bytes]) -> None:
    """Write several files of `folder` together: every one is written before any is renamed, so
    a failure while writing leaves all of them as they were (files that describe each other, such
    as a model card and the figures it quotes, never disagree after a failed write)."""
    folder = Path(folder)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, content in files.items():
            tmp = _temporary(folder / name)
            staged.append((tmp, folder / name))
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, dest in staged:
        os.replace(tmp, dest)


@contextmanager
def staged_dir(dest: str | Path, replace: bool = False) -> Iterator[Path]:
    """A temporary folder next to `dest` to fill; on a clean exit it becomes `dest`, on an error
    it is removed and `dest` is untouched.

    With ``replace=False`` `dest` must not exist (``FileExistsError`` otherwise, checked again at
    the rename). With ``replace=True`` an existing `dest` is swapped out and removed after the new
    folder is in place: between the two renames a reader finds neither, never half of one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not replace:
        raise FileExistsError(f"{dest}: already exists")
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = None
        if dest.exists():
            if not replace:
                raise FileExistsError(f"{dest}: already exists")
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
            old.rmdir()
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
