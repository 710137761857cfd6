"""`python -m trainer assess`: how well each prompt was pronounced, syllable by syllable.

For every utterance of the manifest with a known prompt (field `prompt`, the text the speaker
was asked to read; rows without one, or with an empty one, use their transcript `text`, counted
in the summary as `prompt_from_text`):

1. expected phones: the prompt's standard pronunciation (trainer.data.phones), cut into syllables;
2. the phone model's log posteriors; the expected phones forced-aligned to them (Viterbi over
   the CTC trellis, trainer.assessment.align) -> frames and a GOP score per phone (a syllable's
   GOP is its worst phone's);
3. the verdict per syllable: every syllable is scored against every single-phone edit of it
   (a CTC log-likelihood ratio combined with its GOP, trainer.assessment.detect), and flagged
   when the score is below the threshold; the verdict then names what was most likely heard
   (`said`) and, where one describes it, the phonological process (`pattern`,
   trainer.data.processes; "other" where none does). The rule is calibrated on a labelled
   manifest (`--calibrate`, which writes calibration.json; later runs read it with
   `--calibration DIR`), else detect.DEFAULT_RULE;
4. what the model recognises freely (greedy CTC) aligned to the expected phones: per syllable
   `recognised` (correct / substituted by what / deleted), phones inserted between syllables,
   and the phone confusions (trainer.assessment.verdicts).

Rows that cannot be assessed are skipped and counted by reason: audio that cannot be read,
audio too short for the prompt, a prompt without a phone (e.g. punctuation only), or phones the
model lacks.

Outputs in DIR (local, PVC or s3://):
    assessment.jsonl     one line per assessed utterance (syllables with verdicts, scores, times;
                         strict JSON: no NaN)
    assessment.json      counts, error patterns per age group, phone confusions, skipped rows,
                         the rule and where it came from; with ground truth (rows carrying
                         `mispronunciations`, as the synthetic corpus's do): syllable-level
                         detection precision/recall/F1 of the verdicts and of free recognition,
                         recall per process of the injected errors, and the ROC AUC of phone GOP
                         and of the syllable score
    calibration.json     with --calibrate: the rule chosen, the speed and its detection figures
    assessment.md        the same as tables; charts error_patterns_by_age.png, phone_confusions.png
                         (assessment.md is written last: it marks a finished assessment)
Only phone-unit models can be assessed: a spelling model writes what the speaker meant.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from trainer import storage
from trainer.assessment import detect
from trainer.assessment.align import AlignmentError, forced_align, gop
from trainer.assessment.detect import DEFAULT_RULE, Rule, detection, syllable_scores
from trainer.assessment.verdicts import CORRECT, DELETED, SUBSTITUTED, syllable_verdicts
from trainer.config import SPEED_RANGE
from trainer.data.manifest import atomic_write, fetch_audio, load_manifest, write_json
from trainer.data.phones import PhoneError, from_phones, is_final, is_initial, is_vowel, syllables, to_phones
from trainer.data.processes import BY_NAME, OTHER, classify
from trainer.data.text import normalize_transcript, to_units
from trainer.evaluation.breakdown import DIMENSIONS
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import UNKNOWN_CHAR, load_model, model_unit, resolve_device
from trainer.evaluation.inference import default_batch_seconds, transcribe
from trainer.exit_codes import ConfigError
from trainer.layout import ASSESSMENT_REPORT_FILE as REPORT_FILE
from trainer.model.transcriber import CtcTranscriber

ASSESSMENT_FILE = "assessment.jsonl"
SUMMARY_FILE = "assessment.json"
CALIBRATION_FILE = "calibration.json"
_log = logging.getLogger(__name__)


class NoPromptPhones(ConfigError):
    """The prompt has no phone to assess (empty, or punctuation only)."""


class CtcPosteriors(CtcTranscriber):
    """Log posteriors [frames, classes] of each audio instead of its text."""

    def from_logits(self, logits: np.ndarray) -> np.ndarray:
        import torch

        return torch.log_softmax(torch.from_numpy(logits), dim=-1).numpy()


def frame_seconds(model, speed: float = 1.0) -> float:
    """Seconds of the recording per output frame (the product of the feature encoder's strides),
    the recording played `speed` times faster into the model."""
    from trainer.data.audio import SAMPLE_RATE

    return float(np.prod(model.config.conv_stride)) / SAMPLE_RATE * speed


def assess_utterance(log_probs: np.ndarray, codec, prompt: str, seconds_per_frame: float) -> dict[str, Any]:
    """Assessment of one utterance without verdicts (`judge` adds them; module docstring);
    raises AlignmentError, ConfigError."""
    units = to_units(normalize_transcript(prompt), "phone")
    if not units.strip():
        raise NoPromptPhones(f"prompt {prompt!r} has no phones")
    tokenizer = codec.processor.tokenizer
    ids = tokenizer(units).input_ids
    if len(ids) != len(units):
        raise ConfigError(f"prompt {prompt!r}: the tokenizer made {len(ids)} labels of {len(units)} phones")
    missing = sorted({u for u, i in zip(units, ids) if i == tokenizer.unk_token_id})
    if missing:
        raise ConfigError(f"phones {''.join(missing)!r} are not in the model's vocabulary")
    spans = forced_align(log_probs, ids, blank=tokenizer.pad_token_id)
    scores = gop(log_probs, ids, spans)
    # Word delimiters are aligned too (the model was trained with them) but are not phones.
    positions = [i for i, u in enumerate(units) if not u.isspace()]
    phones = [
        {
            "phone": units[i],
            "gop": round(scores[i], 4),
            "start": round(spans[i].start * seconds_per_frame, 3),
            "end": round(spans[i].end * seconds_per_frame, 3),
        }
        for i in positions
    ]
    cut = syllables(units)
    inventory = {
        unit: i
        for unit, i in tokenizer.get_vocab().items()
        if len(unit) == 1 and (is_initial(unit) or is_vowel(unit) or is_final(unit))
    }
    detected = syllable_scores(log_probs, ids, positions, spans, cut, inventory, tokenizer.pad_token_id)
    decoded = codec.decode(log_probs).text
    recognised = to_phones(decoded.replace(tokenizer.unk_token, UNKNOWN_CHAR))
    heard, inserted, confusions = syllable_verdicts(cut, recognised)
    entries = []
    for recognition, syllable, score in zip(heard, cut, detected):
        own = phones[syllable.start : syllable.start + len(syllable)]
        entry = {k: recognition.pop(k) for k in ("index", "word", "expected")}
        entry.update(
            llr=round(score.llr, 4),
            heard={"said": from_phones(score.said), "pattern": classify(syllable, score.said)},
            gop=min(p["gop"] for p in own),
            start=own[0]["start"],
            end=own[-1]["end"],
            phones=own,
        )
        entry["recognised"] = recognition
        entries.append(entry)
    return {
        "expected": from_phones(units),
        "recognised": from_phones(recognised),
        "gop": round(float(np.mean([p["gop"] for p in phones])), 4),
        "syllables": entries,
        "inserted": inserted,
        "confusions": confusions,
    }


def check_speed(speed: float, setting: str = "--speed") -> float:
    """`speed` when within SPEED_RANGE, else ConfigError naming `setting`."""
    if not (np.isfinite(speed) and SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]):
        raise ConfigError(f"{setting}: must be within [{SPEED_RANGE[0]}, {SPEED_RANGE[1]}], got {speed}")
    return speed


def judge(line: dict[str, Any], rule: Rule) -> None:
    """Set each syllable's verdict by the decision rule (trainer.assessment.detect.Rule): a flagged
    syllable was `deleted` when nothing of it was heard, else `substituted` by what was heard."""
    for entry in line["syllables"]:
        for key in ("verdict", "said", "pattern"):
            entry.pop(key, None)
        if rule.flags(entry["llr"], entry["gop"]):
            heard = entry["heard"]
            entry.update(verdict=SUBSTITUTED if heard["said"] else DELETED, **heard)
        else:
            entry["verdict"] = CORRECT


def read_rule(folder: str) -> tuple[Rule, float | None, float]:
    """The rule of an earlier `assess --calibrate` (its output folder, local or s3://), the false
    alarm rate it was calibrated for (None where it does not say: written before the budget) and
    the speed the recordings were played at (1.0 where it does not say: written before speeds)."""
    path = storage.materialize(folder) / CALIBRATION_FILE
    if not path.is_file():
        raise ConfigError(f"--calibration: {path} not found (write it with `trainer assess --calibrate`)")
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        keys = ("threshold", "gop_weight", "false_alarm_rate", "speed")
        values = [fields.get(key, 1.0 if key == "speed" else None) for key in keys]
    except (OSError, ValueError, AttributeError) as exc:  # ValueError: not JSON; AttributeError: not an object
        raise ConfigError(f"{path}: not a readable calibration ({exc})") from None
    for key, value in zip(keys, values):
        if key == "false_alarm_rate" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"{path}: field {key} must be a number, got {value!r}")
    check_speed(values[3], f"{path}: field speed")
    rate = None if values[2] is None else float(values[2])
    return Rule(float(values[0]), float(values[1])), rate, float(values[3])


def assess(
    model_uri: str,
    manifest: str | Path,
    output: str,
    cfg: EvalConfig,
    progress: bool = True,
    calibration: str | None = None,
    calibrate: bool = False,
    false_alarm_rate: float = detect.FALSE_ALARM_RATE,
    speed: float | None = None,
) -> dict[str, Any]:
    """Assess every utterance of `manifest` with a phone model; write and return the summary.

    The decision rule: with `calibrate`, the one that flags `false_alarm_rate` of this (labelled)
    manifest's correctly said syllables (detect.calibrate), written to calibration.json; else the
    one in `calibration` (an earlier calibrating run's output), else DEFAULT_RULE.
    `speed`: the recordings are played that many times faster before the model (check_speed); a
    calibration records its speed and holds only for it (default: the calibration's, else 1.0)."""
    from trainer.assessment.report import render_markdown, write_charts

    if calibrate and calibration:
        raise ConfigError("assess: --calibrate writes a calibration; --calibration reads one: give one of them")
    if not 0 <= false_alarm_rate < 1:
        raise ConfigError(f"--false-alarm-rate: must be within [0, 1), got {false_alarm_rate}")
    rule, source = DEFAULT_RULE, "default"
    calibrated_for: float | None = None  # the false alarm rate the rule was calibrated for, where known
    calibration_lines: list[dict] = []
    if speed is not None:
        check_speed(speed)
    if calibration:
        (rule, calibrated_for, calibrated_speed), source = (
            read_rule(calibration),
            storage.join(calibration, CALIBRATION_FILE),
        )
        if speed is not None and speed != calibrated_speed:
            raise ConfigError(
                f"--speed {speed}: {source} was calibrated on recordings played at speed {calibrated_speed}; "
                "its rule holds only there (calibrate again at this speed, or leave --speed out)"
            )
        speed = calibrated_speed
        calibration_lines = read_labelled_lines(calibration)
    speed = 1.0 if speed is None else speed

    unit = model_unit(model_uri)
    if unit != "phone":
        raise ConfigError(
            f"assess: {model_uri} writes {unit} units; assessment needs a phone model "
            "(`data prepare --unit phone`, values data.unit: phone)"
        )
    rows = load_manifest(manifest)
    if not rows:
        raise ConfigError(f"{manifest}: no utterances to assess")
    fetch_audio(rows)
    loaded = load_model(model_uri)
    device = resolve_device(cfg.device)
    batch_seconds = cfg.batch_seconds or default_batch_seconds(device)
    posteriors = CtcPosteriors(loaded.model, loaded.codec, device, cfg.chunk_seconds, cfg.stride_seconds)
    result = transcribe(posteriors, rows, batch_seconds, cfg.num_workers, progress, speed)
    lines, not_assessable = assess_rows(rows, result.decoded, loaded.codec, frame_seconds(loaded.model, speed))
    skipped = {**result.skipped, **not_assessable}
    if not lines:
        raise ConfigError(f"{manifest}: none of the {len(rows)} utterances could be assessed ({_reasons(skipped)})")
    if calibrate:
        labelled = with_ground_truth(lines)
        if not labelled:
            raise ConfigError(f"--calibrate: no assessed row of {manifest} has `mispronunciations` (ground truth)")
        try:
            rule, source = calibrated_rule(labelled, false_alarm_rate), f"calibrated on {manifest}"
        except ValueError as exc:
            raise ConfigError(f"--calibrate: {manifest}: {exc}") from None
        calibrated_for, calibration_lines = false_alarm_rate, labelled
    for line in lines:
        judge(line, rule)
    summary = summarise(lines, skipped, model_uri, str(manifest), loaded.info, rule)
    if "ground_truth" in summary and calibration_lines:
        summary["ground_truth"]["held_out"] = held_out_scores(
            calibration_lines, with_ground_truth(lines), false_alarm_rate if calibrated_for is None else calibrated_for
        )
    summary["threshold"] = {"value": rule.threshold, "gop_weight": rule.gop_weight, "source": source}
    summary["speed"] = speed
    if calibrated_for is not None:
        summary["threshold"]["false_alarm_rate"] = calibrated_for

    def write(folder: Path) -> None:
        with atomic_write(folder / ASSESSMENT_FILE) as fh:
            for line in lines:
                line = {k: v for k, v in line.items() if k != "confusions"}
                fh.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
        write_json(summary, folder / SUMMARY_FILE)
        if calibrate:
            calibrated = {
                "threshold": rule.threshold,
                "gop_weight": rule.gop_weight,
                "false_alarm_rate": false_alarm_rate,
                "speed": speed,
                "model": model_uri,
                "manifest": str(manifest),
            }
            write_json({**calibrated, "detection": summary["ground_truth"]["detection"]}, folder / CALIBRATION_FILE)
        write_charts(summary, folder)
        with atomic_write(folder / REPORT_FILE) as fh:  # last: marks a finished assessment
            fh.write(render_markdown(summary))

    storage.publish_dir(output, write)
    _log.info("assessed %d utterances (%d skipped) -> %s", len(lines), len(skipped), output)
    return summary


def assess_rows(
    rows: list[dict], log_probs: Mapping[str, np.ndarray], codec, seconds_per_frame: float
) -> tuple[list[dict], dict[str, str]]:
    """The assessment line of each row with posteriors in `log_probs` (by utt_id; rows without are
    left out), and the rows that cannot be assessed with their reason."""
    skipped: dict[str, str] = {}
    lines = []
    for row in rows:
        if row["utt_id"] not in log_probs:
            continue
        prompt = prompt_of(row)
        try:
            assessed = assess_utterance(log_probs[row["utt_id"]], codec, prompt, seconds_per_frame)
        except AlignmentError:
            skipped[row["utt_id"]] = "audio_too_short_for_prompt"
            continue
        except NoPromptPhones as exc:
            skipped[row["utt_id"]] = f"no_prompt_phones: {exc}"
            continue
        except PhoneError as exc:  # g2pK made no valid phone string of the prompt
            skipped[row["utt_id"]] = f"{exc.reason}: {exc}"
            continue
        except ConfigError as exc:
            skipped[row["utt_id"]] = f"prompt_not_assessable: {exc}"
            continue
        lines.append(
            {
                **{k: row.get(k) for k in ("utt_id", "speaker_id", "age", "gender", "duration")},
                "prompt": prompt,
                "prompt_from_text": prompt != row.get("prompt"),
                **assessed,
                **({"mispronunciations": row["mispronunciations"]} if "mispronunciations" in row else {}),
            }
        )
    return lines, skipped


def prompt_of(row: dict[str, Any]) -> str:
    """The text the speaker was asked to read: `prompt`, or the transcript where it is missing or empty."""
    prompt = row.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else row["text"]


def summarise(
    lines: list[dict], skipped: dict[str, str], model_uri: str, manifest: str, model_info: dict, rule: Rule
) -> dict[str, Any]:
    """Counts, error patterns per age group, phone confusions and, with ground truth, detection."""
    age_group = DIMENSIONS["age_group"]
    verdicts: Counter = Counter()
    patterns: dict[str, Counter] = {}
    syllables_per_group: Counter = Counter()
    confusions: Counter = Counter()
    for line in lines:
        group = age_group(line)
        syllables_per_group[group] += len(line["syllables"])
        for entry in line["syllables"]:
            verdicts[entry["verdict"]] += 1
            if entry["verdict"] != CORRECT:
                patterns.setdefault(group, Counter())[entry["pattern"]] += 1
        confusions.update(map(tuple, line["confusions"]))
    summary: dict[str, Any] = {
        "model": model_info,
        "manifest": manifest,
        "utterances": len(lines),
        "prompt_from_text": sum(line["prompt_from_text"] for line in lines),
        "skipped": {"count": len(skipped), "by_reason": _reasons(skipped), "utt_ids": sorted(skipped)},
        "syllables": sum(syllables_per_group.values()),
        "verdicts": dict(verdicts),
        # Free recognition's phones between syllables: no verdict judges them (module docstring, 4.).
        "insertions_heard": sum(len(line["inserted"]) for line in lines),
        "syllables_per_age_group": dict(sorted(syllables_per_group.items())),
        "patterns_per_age_group": {g: dict(c.most_common()) for g, c in sorted(patterns.items())},
        "confusions": [{"expected": a, "said": b, "count": n} for (a, b), n in confusions.most_common()],
    }
    truth = with_ground_truth(lines)
    if truth:
        summary["ground_truth"] = ground_truth_scores(truth, rule)
    return summary


def labelled_syllables(lines: list[dict], leave_out: str | None = None) -> tuple[list[dict], list[bool]]:
    """Every syllable entry of `lines` (rows with ground truth) and whether it was mispronounced;
    with `leave_out`, without the syllables mispronounced by that process (a calibration that
    must not see it)."""
    entries, truth = [], []
    for line in lines:
        injected = {e["syllable"]: e["pattern"] for e in line["mispronunciations"]}
        for entry in line["syllables"]:
            if leave_out is None or injected.get(entry["index"]) != leave_out:
                entries.append(entry)
                truth.append(entry["index"] in injected)
    return entries, truth


def read_labelled_lines(folder: str) -> list[dict]:
    """The lines with ground truth of an earlier `assess --calibrate`'s assessment.jsonl (none
    when it has no such file, e.g. a calibration.json written by hand)."""
    path = storage.materialize(folder) / ASSESSMENT_FILE
    if not path.is_file():
        return []
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            line = json.loads(text) if text.strip() else None
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: not a JSON line ({exc})") from None
        if line is not None:
            lines.append(line)
    return with_ground_truth(lines)


def with_ground_truth(lines: Iterable[dict]) -> list[dict]:
    """The lines of rows that carry their known mispronunciations (the synthetic corpus's do)."""
    return [line for line in lines if "mispronunciations" in line]


def held_out_scores(calibration_lines: list[dict], lines: list[dict], false_alarm_rate: float) -> dict[str, Any]:
    """Leave-process-out: for each process with errors in `lines`, the rule calibrated on
    `calibration_lines` without that process's errors, scored on the correct syllables of `lines`
    and that process's errors (the other processes' errors left out). A process the calibration
    never saw is scored as a new one would be; the means are over the processes with errors. Where
    a process has few errors among many correct syllables its precision is low whatever the rule
    (every false flag counts against it): recall is the figure that compares across processes."""
    processes = sorted({e["pattern"] for line in lines for e in line["mispronunciations"]})
    per_process: dict[str, Any] = {}
    for process in processes:
        rule = calibrated_rule(calibration_lines, false_alarm_rate, process)
        flags, truth = [], []
        for line in lines:
            injected = {e["syllable"]: e["pattern"] for e in line["mispronunciations"]}
            for entry in line["syllables"]:
                if injected.get(entry["index"], process) == process:
                    flags.append(rule.flags(entry["llr"], entry["gop"]))
                    truth.append(entry["index"] in injected)
        per_process[process] = {
            "rule": {"threshold": rule.threshold, "gop_weight": rule.gop_weight},
            "errors": int(sum(truth)),
            **detection(flags, truth),
        }

    def mean(key: str) -> float | None:
        return float(np.mean([r[key] for r in per_process.values()])) if per_process else None

    return {"per_process": per_process, "mean_f1": mean("f1"), "mean_recall": mean("recall")}


def calibrated_rule(lines: list[dict], false_alarm_rate: float, leave_out: str | None = None) -> Rule:
    """The rule calibrated on `lines` (rows with ground truth; trainer.assessment.detect.calibrate),
    without the errors of process `leave_out` when given."""
    entries, truth = labelled_syllables(lines, leave_out)
    return detect.calibrate([e["llr"] for e in entries], [e["gop"] for e in entries], truth, false_alarm_rate)


def ground_truth_scores(lines: list[dict], rule: Rule) -> dict[str, Any]:
    """Against the injected errors, per syllable: detection by the verdicts and by free recognition
    alone (`recognised` not correct), recall per process of the injected errors (`pattern`; one
    outside trainer.data.processes counts as "other"); ROC AUC of the rule's score and of llr alone
    (syllables), and of phone GOP (correct vs mispronounced phones: a phone of an injected syllable
    that changed)."""
    entries, truth = labelled_syllables(lines)
    gops: list[float] = []
    wrong: list[bool] = []
    found: dict[str, Counter] = {}
    for line in lines:
        injected = {e["syllable"]: e for e in line["mispronunciations"]}
        for entry in line["syllables"]:
            error = injected.get(entry["index"])
            changed = _changed_roles(error) if error else set()
            for role, phone in zip(_roles(entry["phones"]), entry["phones"]):
                gops.append(phone["gop"])
                wrong.append(role in changed)
            if error:
                process = error.get("pattern") if error.get("pattern") in BY_NAME else OTHER
                found.setdefault(process, Counter())[entry["verdict"] != CORRECT] += 1
    scores = [rule.score(e["llr"], e["gop"]) for e in entries]
    return {
        "utterances": len(lines),
        "injected_syllables": int(sum(truth)),
        "detection": detection([e["verdict"] != CORRECT for e in entries], truth),
        "recognition_detection": detection([e["recognised"]["verdict"] != CORRECT for e in entries], truth),
        "recall_per_process": {
            name: {"errors": c[True] + c[False], "flagged": c[True], "recall": c[True] / (c[True] + c[False])}
            for name, c in sorted(found.items())
        },
        "score_auc": roc_auc([-x for x in scores], truth),
        "llr_auc": roc_auc([-e["llr"] for e in entries], truth),
        "gop_auc": roc_auc([-g for g in gops], wrong),
        "mispronounced_phones": int(sum(wrong)),
        "phones": len(gops),
    }


def _roles(phones: list[dict]) -> list[str]:
    (syllable,) = syllables("".join(p["phone"] for p in phones))
    return ["onset"] * len(syllable.onset) + ["vowel"] * len(syllable.vowel) + ["coda"] * len(syllable.coda)


def _changed_roles(error: dict) -> set[str]:
    (want,), said = syllables(error["expected"]), syllables(error["spoken"])
    spoken = said[0] if len(said) == 1 else None
    return {
        role for role in ("onset", "vowel", "coda") if spoken is None or getattr(want, role) != getattr(spoken, role)
    }


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with ties counted half); None without both classes."""
    scores_arr, pos = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return None
    order = np.argsort(scores_arr, kind="mergesort")
    ranks = np.empty(len(scores_arr))
    sorted_scores = scores_arr[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _reasons(skipped: dict[str, str]) -> dict[str, int]:
    return dict(Counter(reason.split(":")[0] for reason in skipped.values()))
