"""A user splits their own manifest in which each child's id is written three ways (NFC, NFD as macOS
tools write Hangul, and with a trailing space): each child is one speaker, in one split, and the
split's leakage audit counts speakers the way the split did (it reported 0 shared speakers while
one child sat in train, validation and test)."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

from trainer.data.curriculum import nested_subsets
from trainer.data.manifest import load_manifest, speaker_identity, write_manifest
from trainer.data.split import _audit, split_by_speaker

from .conftest import make_rows

REPO = Path(__file__).resolve().parents[2]
SPELLINGS = (lambda name: name, lambda name: unicodedata.normalize("NFD", name), lambda name: name + " ")


def _children_written_three_ways(n: int = 40) -> list[dict]:
    """Rows of `n` children (Hangul ids), the rows of each spread over its three spellings."""
    rows = make_rows(n, 12, seed=3)
    speakers = sorted({r["speaker_id"] for r in rows})
    names = {s: f"아이{k:03d}" for k, s in enumerate(speakers)}
    for k, row in enumerate(rows):
        row["speaker_id"] = SPELLINGS[k % 3](names[row["speaker_id"]])
    return rows


def test_one_child_written_three_ways_lands_in_one_split(tmp_path):
    manifest = tmp_path / "mine.jsonl"
    write_manifest(_children_written_three_ways(), manifest)
    out = tmp_path / "split"
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "data", "split", "--manifest", str(manifest), "--out", str(out)]
        + ["--val-fraction", "0.2", "--test-fraction", "0.2"],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Read the written split files as plain JSON (not through the manifest reader, which normalises).
    children = {}
    for name in ("train", "val", "test"):
        for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            child = unicodedata.normalize("NFC", json.loads(line)["speaker_id"]).strip()
            children.setdefault(child, set()).add(name)
    assert len(children) == 40
    leaked = {child: splits for child, splits in children.items() if len(splits) > 1}
    assert not leaked, f"{len(leaked)} children in several splits, e.g. {next(iter(leaked.items()))}"
    report = json.loads((out / "split_report.json").read_text(encoding="utf-8"))
    assert report["leakage"]["shared_speakers"] == 0
    assert report["corpus"]["speakers"] == 40


def test_audit_counts_a_leaked_child_written_another_way():
    rows = _children_written_three_ways(6)
    child = rows[0]["speaker_id"]
    parts = split_by_speaker(rows, 0.2, 0.2, seed=1).parts()
    # A hand-made leak: the child's NFD spelling moved into another split is still that child.
    other = next(name for name, part in parts.items() if all(speaker_identity(r["speaker_id"]) != child for r in part))
    parts[other].append({**rows[0], "speaker_id": unicodedata.normalize("NFD", child) + "  "})
    assert _audit(parts)["shared_speakers"] == 1


def test_curriculum_counts_children_not_spellings(tmp_path):
    rows = _children_written_three_ways(10)
    manifest = tmp_path / "train.jsonl"
    write_manifest(rows, manifest)
    read = load_manifest(manifest)
    assert len({r["speaker_id"] for r in read}) == 10  # the reader gives one id per child
    _, report = nested_subsets(rows, seed=0, fractions=[0.5, 1.0])
    assert report["pool"]["speakers"] == 10
