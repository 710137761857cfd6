"""The storage interface on both backends (a local folder and a real S3 server, SeaweedFS): folders
published atomically, read back only once complete, foreign files never replaced; S3 objects
fetched into the pod's cache once, and again only when they changed; other schemes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer import storage
from trainer.exit_codes import ConfigError
from trainer.storage import MARKER, open_store, publish_dir, read_published


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """A folder of outputs on each backend."""
    if request.param == "local":
        return str(tmp_path / "outputs")
    s3_env = request.getfixturevalue("s3_env")
    return f"s3://{s3_env.new_bucket()}/outputs"


def _writer(files: dict[str, str]):
    def write(folder: Path) -> None:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")

    return write


def test_publish_dir_replaces_the_folder_and_marks_it_last(root):
    report = storage.join(root, "eval")
    assert read_published(report, "metrics.json") is None
    publish_dir(report, _writer({"predictions.jsonl": "p1", "charts/a.png": "a", "metrics.json": "m1"}))
    assert read_published(report, "metrics.json") == "m1"
    publish_dir(report, _writer({"predictions.jsonl": "p2", "metrics.json": "m2"}))

    store = open_store(root)
    assert store.complete("eval")
    # The second version replaced the first: its files only, nothing left of the first.
    assert store.list_files("eval") == [MARKER, "metrics.json", "predictions.jsonl"]
    assert (read_published(report, "metrics.json"), read_published(report, "predictions.jsonl")) == ("m2", "p2")
    assert storage.exists(storage.join(report, "metrics.json"))
    assert not storage.exists(storage.join(report, "charts/a.png"))
    assert store.list_dirs() == ["eval"]  # no staging folder left behind


def test_a_failed_write_leaves_the_published_version(root):
    report = storage.join(root, "eval")
    publish_dir(report, _writer({"metrics.json": "m1"}))

    def half_written(folder: Path) -> None:
        (folder / "metrics.json").write_text("half", encoding="utf-8")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed while writing"):
        publish_dir(report, half_written)
    assert read_published(report, "metrics.json") == "m1"
    assert open_store(root).list_dirs() == ["eval"]


def test_an_unmarked_folder_is_not_read_and_foreign_files_are_not_replaced(root):
    report = storage.join(root, "eval")
    store = open_store(root)
    store.write_text("eval/metrics.json", "left by an interrupted publish")
    assert read_published(report, "metrics.json") is None  # no completion marker: not finished

    # Files an interrupted publish of the same output left are replaced ...
    publish_dir(report, _writer({"metrics.json": "m1"}))
    assert read_published(report, "metrics.json") == "m1"

    # ... a folder holding someone else's files is not.
    notes = storage.join(root, "notes")
    store.write_text("notes/todo.txt", "mine")
    with pytest.raises(ConfigError, match=r"already holds other files \(todo.txt\); choose a new or empty folder"):
        publish_dir(notes, _writer({"metrics.json": "m"}))
    assert store.list_files("notes") == ["todo.txt"] and store.read_text("notes/todo.txt") == "mine"


def test_publishing_into_the_folder_itself_keeps_its_subfolders_and_writes_last_last(root, monkeypatch):
    """How `compare` publishes its report next to runs/: the report file last, then the marker."""
    publish_dir(storage.join(root, "runs", "base"), _writer({"metrics.json": "m"}))
    order: list[str] = []
    if storage.local_path(root) is None:
        upload = storage.S3Store.upload_file
        monkeypatch.setattr(
            storage.S3Store,
            "upload_file",
            lambda self, path, key: (order.append(Path(key).name), upload(self, path, key)),
        )
    else:
        replace = storage.os.replace
        monkeypatch.setattr(storage.os, "replace", lambda a, b: (order.append(Path(b).name), replace(a, b)))
    storage.publish_files(
        root, _writer({"comparison.md": "table", "summary.json": "{}", "z.png": "png"}), "comparison.md"
    )

    assert order[-1] == "comparison.md" and sorted(order) == ["comparison.md", "summary.json", "z.png"]
    store = open_store(root)
    assert store.complete("")
    assert read_published(storage.join(root, "runs", "base"), "metrics.json") == "m"
    assert store.list_dirs() == ["runs"]


def test_fetch_and_release(root):
    publish_dir(storage.join(root, "checkpoint-1"), _writer({"state.json": "{}"}))
    store = open_store(root)
    folder = store.fetch("checkpoint-1")
    assert (folder / "state.json").read_text(encoding="utf-8") == "{}"
    store.release(folder)
    # A local folder is the published one itself (kept); an S3 one was a downloaded copy (gone).
    assert folder.exists() == (storage.local_path(root) is not None)
    assert store.complete("checkpoint-1")


def test_stored_folder_and_local_path(root, tmp_path):
    publish_dir(storage.join(root, "model"), _writer({"config.json": "{}"}))
    folder = storage.stored_folder(storage.join(root, "model"))
    assert folder is not None and (folder / "config.json").is_file()
    assert storage.stored_folder("facebook/wav2vec2-xls-r-300m") is None  # a Hub id: not stored files
    assert (storage.local_path(root) is None) == root.startswith("s3://")


def test_the_helpers_that_decide_by_backend(tmp_path, monkeypatch):
    """What callers get instead of asking which backend a location is on."""
    monkeypatch.setenv("TRAINER_CACHE_DIR", str(tmp_path / "cache"))
    assert storage.existing_local_dir(str(tmp_path)) == tmp_path
    assert storage.existing_local_dir(str(tmp_path / "missing")) is None
    assert storage.existing_local_dir("s3://bkt/model") is None
    assert storage.expand_user("~/runs") == str(Path.home() / "runs")
    assert storage.expand_user("s3://bkt/runs") == "s3://bkt/runs"
    assert storage.local_or_cached_dir(str(tmp_path / "runs"), "runs") == tmp_path / "runs"
    assert storage.local_or_cached_dir("s3://bkt/runs", "runs") == tmp_path / "cache" / "runs"
    assert storage.needs_volume("/storage") and not storage.needs_volume("s3://bkt/runs")


def test_prefetch_fetches_each_object_once_and_again_when_it_changed(s3_env):
    bucket = s3_env.new_bucket()
    client = s3_env.client()
    uris = [f"s3://{bucket}/corpus/a/{i}.wav" for i in range(20)]
    for i, uri in enumerate(uris):
        client.put_object(Bucket=bucket, Key=storage.split_s3(uri)[1], Body=f"v1-{i}".encode())
    storage.prefetch([*uris[:10], "/a/local/file.wav", f"s3://{bucket}/corpus/missing.wav"])
    cached = [storage.cached_path(uri) for uri in uris]
    assert [p.read_text() for p in cached[:10]] == [f"v1-{i}" for i in range(10)]
    assert not any(p.exists() for p in cached[10:]), "only the files asked for are fetched"
    assert not storage.cached_path(f"s3://{bucket}/corpus/missing.wav").exists()

    stamps = [p.stat().st_mtime_ns for p in cached[:10]]
    storage.prefetch(uris[:10])  # unchanged: not downloaded again
    assert [p.stat().st_mtime_ns for p in cached[:10]] == stamps
    client.put_object(Bucket=bucket, Key="corpus/a/3.wav", Body=b"version two")  # another size
    assert storage.local_file(uris[3]).read_text() == "version two"
    assert storage.cached_file(uris[15]).read_text() == "v1-15"  # not cached yet: fetched on first use


def test_a_manifest_in_s3_names_its_audio_in_s3_and_written_from_the_cache_names_the_objects(s3_env):
    from trainer.data.manifest import load_manifest, write_manifest

    bucket = s3_env.new_bucket()
    row = {"utt_id": "u1", "duration": 1.0, "text": "가", "speaker_id": "s", "age": 5, "gender": "F", "snr_db": None}
    body = json.dumps({**row, "audio_filepath": "../corpus/u1.wav"}) + "\n"
    s3_env.client().put_object(Bucket=bucket, Key="runs/data/val.jsonl", Body=body.encode())
    [read] = load_manifest(f"s3://{bucket}/runs/data/val.jsonl")
    assert read["audio_filepath"] == f"s3://{bucket}/runs/corpus/u1.wav"

    cached = storage.cached_path(f"s3://{bucket}/runs/corpus/u1.wav")
    target = storage.cached_path(f"s3://{bucket}/runs/out/val.jsonl")
    write_manifest([{**row, "audio_filepath": str(cached.resolve())}], target)
    assert json.loads(target.read_text())["audio_filepath"] == f"s3://{bucket}/runs/corpus/u1.wav"
    with pytest.raises(ConfigError, match=rf"s3://{bucket}/runs/data/nothing.jsonl: manifest not found"):
        load_manifest(f"s3://{bucket}/runs/data/nothing.jsonl")


def test_output_folder_publishes_what_changed_and_refuses_a_foreign_prefix(s3_env):
    bucket = s3_env.new_bucket()
    uri = f"s3://{bucket}/corpus"
    with storage.output_folder(uri, last="summary.json") as folder:
        (folder / "a.wav").write_text("a")
        (folder / "summary.json").write_text("{}")
    store = open_store(uri)
    assert store.complete("") and store.list_files() == [MARKER, "a.wav", "summary.json"]
    marker = store.read_text(MARKER)
    # The folder written in the cache is the published version: readers in this pod fetch nothing.
    cached = storage.cached_path(f"{uri}/a.wav")
    inode = cached.stat().st_ino
    assert storage.local_file(f"{uri}/a.wav") == cached and cached.stat().st_ino == inode

    with storage.output_folder(uri, last="summary.json") as folder:  # the step found nothing to do
        assert (folder / "a.wav").read_text() == "a"
    assert store.read_text(MARKER) == marker

    with storage.output_folder(uri, last="summary.json") as folder:  # a new version without a.wav
        (folder / "a.wav").unlink()
        (folder / "b.wav").write_text("b")
    assert store.list_files() == [MARKER, "b.wav", "summary.json"]

    s3_env.client().put_object(Bucket=bucket, Key="theirs/data.csv", Body=b"x")
    with pytest.raises(ConfigError, match=r"--out: s3://.*/theirs already holds other objects \(data.csv\)"):
        with storage.output_folder(f"s3://{bucket}/theirs", last="summary.json") as folder:
            (folder / "summary.json").write_text("{}")
    assert open_store(f"s3://{bucket}/theirs").list_files() == ["data.csv"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("gs://bucket/x", "only local paths and s3:// URIs"), ("s3://", "expected s3://BUCKET/KEY")],
)
def test_locations_other_than_local_paths_and_s3_are_refused(text, problem):
    assert storage.check_location("s3://bucket/runs", "--out") == "s3://bucket/runs"
    assert storage.check_location("runs/data", "--out") == "runs/data"
    with pytest.raises(ConfigError, match=f"--out: {text}: {problem}"):
        storage.check_location(text, "--out")
    with pytest.raises(ConfigError, match="--out: s3://b/k: a local path is needed here; use X"):
        storage.local_arg("--out", "use X")("s3://b/k")
