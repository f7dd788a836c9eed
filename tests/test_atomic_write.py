"""Atomic writes: a reader sees the old content or the new, never half, and a failure leaves the
destination as it was with no temporary file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.atomic_write import staged_dir, write_bytes, write_files, write_json, write_text, write_with


def test_files_are_written_whole_and_leave_no_temporary(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "one")
    write_bytes(tmp_path / "b.bin", b"\x00\x01")
    write_json(tmp_path / "c.json", {"x": 1})
    write_text(tmp_path / "a.txt", "two")  # replaces
    assert (tmp_path / "a.txt").read_text() == "two"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "p.pt"
    write_text(path, "old")

    def half(p: Path) -> None:
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_with(path, half)
    with pytest.raises(TypeError):
        write_json(path, {"x": object()})
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.pt"]


def test_files_written_together_change_together(tmp_path: Path) -> None:
    write_files(tmp_path, {"card.md": "old card", "figures.json": "{}"})
    with pytest.raises(TypeError):
        write_files(tmp_path, {"card.md": "new card", "figures.json": 3})  # type: ignore[dict-item]
    assert (tmp_path / "card.md").read_text() == "old card"
    write_files(tmp_path, {"card.md": "new card", "figures.json": b"[1]"})
    assert (tmp_path / "card.md").read_text() == "new card" and (tmp_path / "figures.json").read_text() == "[1]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md", "figures.json"]


def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    dest = tmp_path / "set"
    with pytest.raises(RuntimeError), staged_dir(dest) as tmp:
        (tmp / "config.yaml").write_text("a: 1")
        raise RuntimeError("scoring failed")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(dest) as tmp:
        (tmp / "config.yaml").write_text("a: 1")
    assert [p.name for p in dest.iterdir()] == ["config.yaml"]
    with pytest.raises(FileExistsError), staged_dir(dest):
        pass
    with staged_dir(dest, replace=True) as tmp:  # a checkpoint saved again
        (tmp / "state.pkl").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["state.pkl"]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
