"""Importers: a corpus on disk -> one validated manifest (`all.jsonl`) plus an import report.

AI Hub layout (`import_aihub`): under ROOT, top-level folders such as `1.Training/`,
`2.Validation/` (or `2.Validation_split/`) and `3.Test/`, one JSON label per utterance and its
audio either next to it or in a paired source tree. Every `*.json` under ROOT is taken as a label.
Each row records its split folder as `source_split`: the first folder on the label's path named
like a split (`1.Training`, `Validation`, `3.Test`, `학습`, ...), else its top-level folder. JSON
files directly under ROOT (dataset descriptions, the synthetic corpus's synth_summary.json) are not
labels.

Finding a label's audio, rules tried in order (import_report.json's `audio_match` counts which
rule found the audio of how many kept rows):
    fileNm         the label's `fileNm` field (any folder part dropped; letter case ignored)
    fileNm_suffix  `fileNm` with a known quirk repaired: real releases write `x.wavp` for `x.wav`,
                   and some leave the extension out
    label_stem     the label's own name with an audio extension
Each name is looked up next to the label, then in the paired folder, then anywhere in the paired
split (`1.Training/` for `1.Training/라벨링데이터/...`, or `원천데이터/Training/` for
`라벨링데이터/Training/...`). Paired folders are how real releases ship labels and audio as separate zips:
`라벨링데이터/TL_01.x/` pairs with `원천데이터/TS_01.x/` (`VL_`/`VS_` for validation, numbered
prefixes such as `02.라벨링데이터` and `[라벨]`/`[원천]` zip names too), at any depth.

Label fields are dotted paths into the JSON (`AihubFields`), because releases differ; the defaults
fit the children's free-talk corpora (`발화정보.stt`, `녹음자정보.recorderId`, ...). Speaker, age
and gender missing from the label are taken from the file name (`filename_pattern`, named groups
`speaker`, `age`, `gender`). Labels may carry a UTF-8 BOM; NFD Hangul is normalised to NFC.

Generic corpora (`import_generic`): JSONL or CSV rows with the manifest's field names (or common
aliases: path/audio/wav, transcript/sentence, speaker/client_id); relative audio paths are
resolved against the input file's folder; a missing duration is probed. With phone units
(`unit="phone"`: `data prepare --unit phone`) each kept row also gets its pronounced form
(`pronounced`, trainer.data.phones), and its phones are the labels checked.

Nothing is dropped silently: each skipped utterance is counted by reason in the report
(`import_report.json` next to the output) and listed in `import_skipped.jsonl`. Reasons:
bad_label_json, unreadable_label (a filesystem error), bad_encoding (a label or JSONL line that is
not UTF-8; the byte offset is in the example), unreadable_folder (a folder os.walk could not list),
missing_transcript, missing_speaker, duplicate_utt_id, invalid_field (a value the manifest format
rejects), invalid_phones (phone units: a text without a valid phone string, e.g. with Latin
letters: trainer.data.phones), and the rules shared with training and evaluation
(trainer.data.screening): missing_audio, not_a_file, permission_denied, io_error, empty_audio,
unreadable_audio (including truncated WAVs), too_short, too_long, empty_transcript,
labels_too_long (at XLS-R's 20 ms frames; phone units count their phones) and duration_mismatch
(the label's duration against the audio's). A CSV that is not UTF-8 or that
csv cannot parse, and an import that keeps nothing, are errors (exit 78) naming the line or the
first skip.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, Literal

import orjson
from tqdm import tqdm

from trainer.data.audio import (
    FLOAT_SUBTYPES,
    SAMPLE_RATE,
    AudioError,
    audio_fingerprint,
    check_duration,
    estimate_snr_db,
    inspect_audio,
    load_audio,
)
from trainer.data.manifest import ManifestError, speaker_identity, validate_row, write_json, write_manifest
from trainer.data.phones import PhoneError, pronounce
from trainer.data.screening import audio_skip_reason, row_problem
from trainer.data.text import WORD_DELIMITER, Unit, normalize_transcript, to_units
from trainer.exit_codes import ConfigError
from trainer.model.frontend import CONV_KERNEL, CONV_STRIDE, conv_frames

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".pcm")
REPORT_FILE = "import_report.json"
SKIPPED_FILE = "import_skipped.jsonl"
_GENDER = {
    "m": "M",
    "male": "M",
    "남": "M",
    "남자": "M",
    "남성": "M",
    "f": "F",
    "female": "F",
    "여": "F",
    "여자": "F",
    "여성": "F",
}
_GENERIC_ALIASES = {
    "audio_filepath": ("audio_filepath", "path", "audio", "audio_path", "wav", "file"),
    "text": ("text", "transcript", "sentence", "stt"),
    "speaker_id": ("speaker_id", "speaker", "client_id", "spk"),
    "utt_id": ("utt_id", "id", "utterance_id"),
}
_EXAMPLES_PER_REASON = 5
# Folder-name parts that differ between a label tree and its audio tree (see module docstring).
_PAIRED_PARTS = (
    (re.compile(r"^(?:\d+\.)?(?:라벨링데이터|원천데이터)$"), "<data>"),
    (re.compile(r"^([TV])[LS]_"), r"\1*_"),
    (re.compile(r"^\[(?:라벨|원천)\]"), "[*]"),
)
_SPLIT_FOLDER = re.compile(r"train|valid|test|dev|학습|검증|평가|시험", re.IGNORECASE)


@dataclass(frozen=True)
class AihubFields:
    """Where an AI Hub label keeps each value (dotted paths into the label JSON)."""

    text: str = "발화정보.stt"
    audio_file: str = "발화정보.fileNm"
    duration: str = "발화정보.recrdTime"
    speaker_id: str = "녹음자정보.recorderId"
    age: str = "녹음자정보.age"
    gender: str = "녹음자정보.gender"
    # AI Hub labels carry no SNR; the synthetic corpus records its mixing SNR here.
    snr_db: str = "합성정보.snrDb"
    # Reading tasks: the text the speaker was asked to read (manifest field `prompt`, for
    # `assess`), and known mispronunciations (`mispronunciations`: the synthetic corpus's ground truth).
    prompt: str = "합성정보.prompt"
    mispronunciations: str = "합성정보.mispronunciations"
    # File-name fallback, e.g. `..._0000000012-1_7_F_00003.wav` -> speaker 0000000012-1, age 7, F.
    filename_pattern: str = r"_(?P<speaker>\d{6,}-\d+)_(?P<age>\d{1,3})_(?:(?P<gender>[MF])_)?"


@dataclass(frozen=True)
class ImportOptions:
    """Rules applied to every utterance, whatever the source format."""

    min_seconds: float = 0.5
    max_seconds: float | None = 30.0
    dual: Literal["spoken", "orthographic"] = "spoken"
    # Decode every file to estimate SNR where the label has none (slow on a full corpus).
    estimate_snr: bool = False
    workers: int = 1
    # Units the label-length check counts (jamo: about 2.5 labels per syllable; phone: counted
    # as jamo, never fewer than phones, since g2pK here would cost ~35 ms a row).
    unit: Unit = "syllable"


@dataclass
class ImportReport:
    """Counts of one import; `to_dict()` is what import_report.json holds."""

    source: str
    output: str
    format: str
    options: dict
    candidates: int = 0
    kept: int = 0
    hours_kept: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    audio_formats: Counter = field(default_factory=Counter)
    source_splits: Counter = field(default_factory=Counter)
    unknown_fields: Counter = field(default_factory=Counter)
    audio_match: Counter = field(default_factory=Counter)  # AI Hub: matching rule -> kept rows
    columns: dict[str, dict] = field(default_factory=dict)  # hf: split -> role -> column (trainer.data.hf_source)
    records: list[dict] = field(default_factory=list)  # every skip, for import_skipped.jsonl

    def skip(self, reason: str, where: str, detail: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < _EXAMPLES_PER_REASON:
            shown.append(f"{where}: {detail}" if detail else where)
        self.records.append({"where": where, "reason": reason, "detail": detail})

    def first_skip(self) -> str:
        """`; first: WHERE: REASON: DETAIL` for the first skip ("" when none)."""
        if not self.records:
            return ""
        first = self.records[0]
        return f"; first: {first['where']}: {first['reason']}: {first['detail']}"

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["records"]  # listed in import_skipped.jsonl
        out["hours_kept"] = round(self.hours_kept, 4)
        out["skipped_total"] = sum(self.skipped.values())
        for key in ("skipped", "audio_formats", "source_splits", "unknown_fields", "audio_match"):
            out[key] = dict(sorted(getattr(self, key).items()))
        return out


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ----------------------------------------------------------------------------- field parsing


def _nfc_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A label's JSON object with NFC keys: macOS tools write Hangul keys (녹음자정보) as NFD, which
    the configured field paths would not find."""
    return {unicodedata.normalize("NFC", key): value for key, value in pairs}


def _lookup(obj: Any, dotted: str) -> Any:
    for part in unicodedata.normalize("NFC", dotted).split(".") if dotted else ():
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value).strip() if isinstance(value, str) else value


def parse_age(value: Any) -> int | None:
    """7, "7", "7세", 7.0 -> 7; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value) if 0 <= value <= 130 else None
    if isinstance(value, str):
        match = re.match(r"\s*(\d{1,3})", value)
        if match and int(match.group(1)) <= 130:
            return int(match.group(1))
    return None


def parse_gender(value: Any) -> str | None:
    """M/F from "남", "여", "male", "F", ...; anything else -> None."""
    return _GENDER.get(_nfc(value).lower()) if isinstance(value, str) else None


def _parse_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# ----------------------------------------------------------------------------- per-utterance work


def _finish(candidate: dict, options: ImportOptions) -> tuple[dict, str]:
    """Probe the audio, check the row as training will, build the manifest row; raises _Skip.

    Returns (row, audio format).
    """
    text = normalize_transcript(candidate["raw_text"], options.dual)
    if not text:
        raise _Skip("empty_transcript", f"nothing left of {candidate['raw_text']!r}")
    path = candidate["audio_filepath"]
    try:
        info = inspect_audio(path)
        check_duration(info.duration, path, options.min_seconds, options.max_seconds)
        if info.subtype in FLOAT_SUBTYPES:  # NaN/Inf samples: decoded here, as training would
            load_audio(path, min_seconds=None)
    except AudioError as exc:
        raise _Skip(audio_skip_reason(exc), f"{exc.path}: {exc.detail}" if exc.detail else exc.path) from None
    pronounced = pronounce(text) if options.unit == "phone" else None
    try:
        labels = to_units(text, options.unit, pronounced).replace(" ", WORD_DELIMITER)
    except PhoneError as exc:
        raise _Skip(exc.reason, str(exc)) from None
    frames = conv_frames(CONV_KERNEL, CONV_STRIDE, round(info.duration * SAMPLE_RATE))
    problem = row_problem(labels, frames, candidate["label_duration"], info.duration, delimiter=WORD_DELIMITER)
    if problem == "duration_mismatch":
        raise _Skip(problem, f"{path}: label says {candidate['label_duration']:.3f} s, audio has {info.duration:.3f} s")
    if problem is not None:
        raise _Skip(problem, f"{len(labels)} {options.unit} labels for {info.duration:.2f} s ({frames} frames)")
    try:
        snr = candidate["snr_db"]
        if snr is None and options.estimate_snr:
            snr = estimate_snr_db(load_audio(path, min_seconds=None))
        fingerprint = audio_fingerprint(path)
    except AudioError as exc:
        raise _Skip(audio_skip_reason(exc), f"{exc.path}: {exc.detail}" if exc.detail else exc.path) from None
    row = {
        "utt_id": candidate["utt_id"],
        "audio_filepath": str(path),
        "duration": round(info.duration, 4),
        "text": text,
        "speaker_id": candidate["speaker_id"],
        "age": candidate["age"],
        "gender": candidate["gender"],
        "snr_db": None if snr is None else round(snr, 2),
        "source_split": candidate["source_split"],
        "audio_fingerprint": fingerprint,
    }
    if pronounced is not None:  # spares training and evaluation a g2pK call (trainer.data.text)
        row["pronounced"] = pronounced
    prompt = candidate.get("prompt")
    if isinstance(prompt, str) and (prompt := normalize_transcript(prompt, "orthographic")):
        row["prompt"] = prompt
    if isinstance(candidate.get("mispronunciations"), list):
        row["mispronunciations"] = candidate["mispronunciations"]
    return row, info.format


# Set before the worker pool forks, so children inherit them without pickling per task.
_CONTEXT: dict[str, Any] = {}


def _aihub_candidate(label: Path) -> dict:
    """Read one AI Hub label into an unchecked candidate row; raises _Skip."""
    root: Path = _CONTEXT["root"]
    fields: AihubFields = _CONTEXT["fields"]
    rel = label.relative_to(root).parts
    try:
        raw = label.read_bytes()
    except OSError as exc:
        raise _Skip("unreadable_label", exc.strerror or str(exc)) from None
    try:
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_nfc_keys)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _Skip("bad_encoding", f"line {line}: not valid UTF-8 at byte offset {exc.start} ({exc.reason})") from None
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise _Skip(
            "bad_label_json", str(exc) if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        ) from None
    if not isinstance(data, dict):
        raise _Skip("bad_label_json", f"top level is {type(data).__name__}, not an object")
    raw_text = _lookup(data, fields.text)
    if not isinstance(raw_text, str) or not raw_text.strip():
        raise _Skip("missing_transcript", f"field {fields.text!r} is {raw_text!r}")
    split = rel[_split_depth(rel[:-1])] if len(rel) > 1 else ""
    audio_name = _nfc(_lookup(data, fields.audio_file))
    audio_name = PureWindowsPath(audio_name).name if isinstance(audio_name, str) and audio_name else None
    audio, rule = _find_audio(label, rel[:-1], audio_name)
    stem_info = (
        re.search(fields.filename_pattern, Path(audio_name or label.name).stem + "_")
        if fields.filename_pattern
        else None
    )
    named = stem_info.groupdict() if stem_info else {}
    speaker = _lookup(data, fields.speaker_id)
    if isinstance(speaker, (int, float)) and not isinstance(speaker, bool):
        speaker = str(speaker)
    speaker = speaker_identity(speaker) if isinstance(speaker, str) else None
    if not speaker:
        speaker = named.get("speaker")
    if not speaker:
        raise _Skip("missing_speaker", f"no {fields.speaker_id!r} and the file name does not match the pattern")
    age = parse_age(_lookup(data, fields.age))
    gender = parse_gender(_lookup(data, fields.gender))
    return {
        "utt_id": _nfc(label.stem),
        "audio_filepath": audio,
        "raw_text": raw_text,
        "speaker_id": speaker,
        "age": age if age is not None else parse_age(named.get("age")),
        "gender": gender or parse_gender(named.get("gender")),
        "snr_db": _parse_float(_lookup(data, fields.snr_db)),
        "label_duration": _parse_float(_lookup(data, fields.duration)),
        "source_split": _nfc(split),
        "audio_match": rule,
        "prompt": _nfc(_lookup(data, fields.prompt)),
        "mispronunciations": _lookup(data, fields.mispronunciations),
    }


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _pair_key(folder: tuple[str, ...]) -> tuple[str, ...]:
    """A folder path with the parts that differ between label and audio trees made equal."""
    parts = []
    for part in folder:
        part = unicodedata.normalize("NFC", part)
        for pattern, replacement in _PAIRED_PARTS:
            part = pattern.sub(replacement, part)
        parts.append(part)
    return tuple(parts)


def _suffix_repairs(name: str) -> list[str]:
    """Names a `fileNm` with a broken extension may stand for (`x.wavp` -> `x.wav`; `x` -> `x.wav`)."""
    suffix = Path(name).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return []
    stem = name[: -len(suffix)] if suffix else name
    prefixed = [stem + ext for ext in AUDIO_EXTENSIONS if suffix.startswith(ext)]
    return prefixed or [name + ext for ext in AUDIO_EXTENSIONS]


def _split_depth(folder: tuple[str, ...]) -> int:
    """Index of the split folder in a folder path (see module docstring); 0 without one."""
    return next((i for i, part in enumerate(folder) if _SPLIT_FOLDER.search(part)), 0)


def _scope(folder: tuple[str, ...]) -> tuple[str, ...]:
    """The paired split a folder belongs to: its path down to the split folder, paired."""
    return _pair_key(folder[: _split_depth(folder) + 1])


def _find_audio(label: Path, folder: tuple[str, ...], name: str | None) -> tuple[Path, str | None]:
    """The label's audio and the rule that found it (module docstring); (expected path, None) when
    nothing matches, so the report names where it should have been."""
    by_pair: dict[tuple, str] = _CONTEXT["audio_by_pair"]
    by_scope: dict[tuple, str] = _CONTEXT["audio_by_scope"]
    scope = _scope(folder)
    rules = [("label_stem", [label.stem + ext for ext in AUDIO_EXTENSIONS])]
    if name:
        rules[:0] = [("fileNm", [name]), ("fileNm_suffix", _suffix_repairs(name))]
    pair = _pair_key(folder)
    for rule, names in rules:
        for candidate in names:
            beside = label.parent / candidate
            if beside.is_file():
                return beside, rule
            key = _name_key(candidate)
            found = by_pair.get((pair, key)) or by_scope.get((scope, key))
            if found is not None:
                return Path(found), rule
    return label.parent / rules[0][1][0], None


def _work(task: tuple[str, Any]) -> tuple[str, Any, tuple]:
    """One utterance in a worker: ("ok", row, (format, audio match rule)) or ("skip", where, (reason, detail))."""
    kind, item = task
    options: ImportOptions = _CONTEXT["options"]
    where = str(item) if kind == "aihub" else item["where"]
    try:
        candidate = _aihub_candidate(item) if kind == "aihub" else item
        row, fmt = _finish(candidate, options)
    except _Skip as exc:
        return "skip", where, (exc.reason, exc.detail)
    return "ok", row, (fmt, candidate.get("audio_match"))


# ----------------------------------------------------------------------------- drivers


def _scan_tree(root: Path, report: ImportReport) -> tuple[list[Path], dict[tuple, str], dict[tuple, str]]:
    """Label files below the top level (sorted) and two audio indexes by file name (_name_key):
    within the paired folder (_pair_key) and within the paired split (_scope; first found wins).
    Folders that cannot be listed are counted in the report."""
    labels: list[Path] = []
    by_pair: dict[tuple, str] = {}
    by_scope: dict[tuple, str] = {}

    def unlisted(exc: OSError) -> None:
        report.skip("unreadable_folder", str(exc.filename), exc.strerror or str(exc))

    for folder, dirs, files in os.walk(root, onerror=unlisted):
        dirs.sort()
        rel = Path(folder).relative_to(root).parts
        scope, pair = _scope(rel), _pair_key(rel)
        for name in sorted(files):
            lower = name.lower()
            if lower.endswith(".json") and rel:
                labels.append(Path(folder) / name)
            elif lower.endswith(AUDIO_EXTENSIONS):
                key, path = _name_key(name), os.path.join(folder, name)
                by_pair.setdefault((pair, key), path)
                by_scope.setdefault((scope, key), path)
    return labels, by_pair, by_scope


def _run(tasks: list[tuple[str, Any]], report: ImportReport, out: Path, options: ImportOptions) -> ImportReport:
    """Process tasks (in parallel when workers > 1), write manifest, skipped list and report."""
    rows: list[dict] = []
    seen: set[str] = set()
    report.candidates += len(tasks)

    def results() -> Iterator[tuple[str, Any, tuple]]:
        if options.workers <= 1 or len(tasks) < 2:
            yield from map(_work, tasks)
            return
        with multiprocessing.get_context("fork").Pool(options.workers) as pool:
            yield from pool.imap(_work, tasks, chunksize=max(1, min(256, len(tasks) // (options.workers * 8))))

    for status, payload, extra in tqdm(results(), total=len(tasks), desc="import", unit="utt", mininterval=2.0):
        if status == "skip":
            report.skip(extra[0], payload, extra[1])
            continue
        row = payload
        if row["utt_id"] in seen:
            report.skip("duplicate_utt_id", row["audio_filepath"], f"utt_id {row['utt_id']!r} seen before")
            continue
        seen.add(row["utt_id"])
        fmt, rule = extra
        try:
            row = validate_row(row, f"{out} (row for {row['audio_filepath']})")
        except ManifestError as exc:
            report.skip("invalid_field", row["audio_filepath"], str(exc))
            continue
        rows.append(row)
        report.kept += 1
        report.hours_kept += row["duration"] / 3600
        report.audio_formats[fmt] += 1
        if rule is not None:
            report.audio_match[rule] += 1
        report.source_splits[row["source_split"] or "(root)"] += 1
        for name in ("age", "gender", "snr_db"):
            report.unknown_fields[name] += row[name] is None
    write_manifest(rows, out)
    write_manifest(report.records, out.parent / SKIPPED_FILE)
    write_json(report.to_dict(), out.parent / REPORT_FILE)
    if not rows:
        raise ConfigError(
            f"import: no usable utterance in {report.source} (see {out.parent / REPORT_FILE}){report.first_skip()}"
        )
    return report


def import_aihub(
    root: str | Path,
    out: str | Path,
    fields: AihubFields = AihubFields(),
    options: ImportOptions = ImportOptions(),
) -> ImportReport:
    """Import an AI Hub-style tree into the manifest `out` (see module docstring)."""
    root, out = Path(root).resolve(), Path(out)
    if not root.is_dir():
        raise ConfigError(f"--root: {root} is not a directory")
    try:
        re.compile(fields.filename_pattern)
    except re.error as exc:
        raise ConfigError(f"filename_pattern: invalid regular expression ({exc})") from None
    if out.parent.resolve() == root or root in out.parent.resolve().parents:
        raise ConfigError(f"--out: {out} lies inside --root {root}; its reports would be read as labels")
    report = ImportReport(str(root), str(out), "aihub", {**asdict(options), "fields": asdict(fields)})
    labels, by_pair, by_scope = _scan_tree(root, report)
    if not labels:
        raise ConfigError(
            f"--root: no *.json labels under {root}"
            + (f" ({report.examples['unreadable_folder'][0]})" if report.records else "")
        )
    _CONTEXT.update(root=root, fields=fields, audio_by_pair=by_pair, audio_by_scope=by_scope, options=options)
    return _run([("aihub", path) for path in labels], report, out, options)


def _generic_rows(path: Path, fmt: str) -> Iterator[tuple[str, dict]]:
    """(FILE:LINE, record) per row; a JSONL line that is not UTF-8 comes back as a bad_encoding
    record, a CSV that is not UTF-8 is a ConfigError (its rows cannot be told apart reliably)."""
    if fmt == "jsonl":
        with open(path, "rb") as handle:
            offset = 0
            for lineno, line in enumerate(handle, start=1):
                where, start = f"{path}:{lineno}", offset
                offset += len(line)
                try:
                    text = line.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    yield where, {"__encoding__": f"not valid UTF-8 at byte offset {start + exc.start} ({exc.reason})"}
                    continue
                if text.strip():
                    try:
                        yield where, orjson.loads(text)
                    except orjson.JSONDecodeError as exc:
                        yield where, {"__error__": str(exc)}
    elif fmt == "csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{path}:{line}: not valid UTF-8 at byte offset {exc.start} ({exc.reason})") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            for record in reader:
                yield (
                    f"{path}:{reader.line_num}",
                    {k: (v if v != "" else None) for k, v in record.items() if k is not None},
                )
        except csv.Error as exc:
            # line_num counts the lines read before the one that failed
            raise ConfigError(f"{path}:{reader.line_num + 1}: not readable as CSV ({exc})") from None
    else:
        raise ConfigError(f"--format: must be aihub, jsonl or csv, got {fmt!r}")


def _generic_field(record: dict, name: str) -> Any:
    """The first non-empty value among `name`'s aliases (_GENERIC_ALIASES), NFC-normalised."""
    for alias in _GENERIC_ALIASES.get(name, (name,)):
        if record.get(alias) not in (None, ""):
            return _nfc(record[alias])
    return None


def _generic_audio(record: dict, base: Path) -> Path | None:
    """The audio file a generic record names (relative to the list's folder `base`), if any."""
    audio = _generic_field(record, "audio_filepath")
    if not isinstance(audio, str):
        return None
    return Path(audio) if os.path.isabs(audio) else base / audio


def generic_audio_files(path: str | Path, fmt: str) -> Iterator[Path]:
    """Every audio file a JSONL or CSV list names, as import reads them (rows it would skip for
    other reasons included): what a rerun must look at besides the list itself."""
    path = Path(path).resolve()
    for _, record in _generic_rows(path, fmt):
        if isinstance(record, dict) and (audio := _generic_audio(record, path.parent)) is not None:
            yield audio


def _generic_candidate(where: str, record: dict, base: Path, filename_pattern: str) -> dict:
    """A generic row as a candidate; raises _Skip."""
    if not isinstance(record, dict):
        raise _Skip("bad_label_json", f"{type(record).__name__}, not an object")
    if "__encoding__" in record:
        raise _Skip("bad_encoding", record["__encoding__"])
    if "__error__" in record:
        raise _Skip("bad_label_json", record["__error__"])

    def pick(name: str) -> Any:
        return _generic_field(record, name)

    raw_text = pick("text")
    if not isinstance(raw_text, str) or not raw_text:
        raise _Skip("missing_transcript", "no text/transcript/sentence field")
    audio_path = _generic_audio(record, base)
    if audio_path is None:
        raise _Skip("missing_audio", "no audio_filepath/path/audio field")
    named = {}
    match = re.search(filename_pattern, audio_path.stem + "_") if filename_pattern else None
    if match:
        named = match.groupdict()
    speaker = pick("speaker_id")
    speaker = speaker_identity(str(speaker)) if speaker is not None else ""
    speaker = speaker or named.get("speaker")
    if not speaker:
        raise _Skip("missing_speaker", "no speaker_id/speaker/client_id field and no match in the file name")
    age = parse_age(record.get("age"))
    return {
        "where": where,
        "utt_id": str(pick("utt_id") or audio_path.stem),
        "audio_filepath": audio_path,
        "raw_text": raw_text,
        "speaker_id": speaker,
        "age": age if age is not None else parse_age(named.get("age")),
        "gender": parse_gender(record.get("gender")) or parse_gender(named.get("gender")),
        "snr_db": _parse_float(record.get("snr_db")),
        "label_duration": _parse_float(record.get("duration")),
        "source_split": _nfc(record.get("source_split") or ""),
    }


def import_generic(
    path: str | Path,
    fmt: Literal["jsonl", "csv"],
    out: str | Path,
    filename_pattern: str = AihubFields.filename_pattern,
    options: ImportOptions = ImportOptions(),
) -> ImportReport:
    """Import a JSONL or CSV list of utterances into the manifest `out` (see module docstring)."""
    path, out = Path(path).resolve(), Path(out)
    if not path.is_file():
        raise ConfigError(f"--manifest: {path} is not a file")
    _CONTEXT.update(options=options)
    report = ImportReport(str(path), str(out), fmt, asdict(options))
    tasks: list[tuple[str, Any]] = []
    for where, record in _generic_rows(path, fmt):
        try:
            tasks.append(("generic", _generic_candidate(where, record, path.parent, filename_pattern)))
        except _Skip as exc:
            report.skip(exc.reason, where, exc.detail)
    report.candidates += len(report.records)  # rows that never became tasks
    return _run(tasks, report, out, options)
