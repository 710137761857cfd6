"""`assess` and `evaluate` end to end with a phone-unit model (random weights) on synthetic
children who mispronounce: files, one verdict per prompt syllable, the ground-truth section, and
exit 78 for a model that writes spelling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.assessment.assess import (  # noqa: E402
    ASSESSMENT_FILE,
    CALIBRATION_FILE,
    REPORT_FILE,
    SUMMARY_FILE,
    assess,
)
from trainer.assessment.detect import DEFAULT_RULE, FALSE_ALARM_RATE, Rule  # noqa: E402
from trainer.assessment.report import CONFUSION_CHART, PATTERNS_CHART  # noqa: E402
from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.data.phones import syllables, text_phones, to_phones  # noqa: E402
from trainer.evaluation.config import EvalConfig  # noqa: E402
from trainer.exit_codes import ConfigError  # noqa: E402

CFG = EvalConfig(num_workers=0, batch_seconds=8.0, bootstrap=50)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prompted(tmp_path_factory) -> dict[str, Path]:
    from trainer.data.importers import import_aihub
    from trainer.data.synth import synthesize_corpus
    from trainer.evaluation.random_models import write_random_models

    root = tmp_path_factory.mktemp("assess")
    synthesize_corpus(root / "corpus", 3, 1, 3, seed=4, workers=2, mispronounce_rate=0.3)
    import_aihub(root / "corpus", root / "all.jsonl")
    texts = [r["text"] for r in load_manifest(root / "all.jsonl")] + [
        r["prompt"] for r in load_manifest(root / "all.jsonl")
    ]
    small = dict(rank=4, frozen_layers=1, lora_std=0.5, hidden_size=32, num_layers=2, num_heads=2, conv_channels=32)
    phone = write_random_models(root / "phone", texts, unit="phone", **small)
    spelling = write_random_models(root / "syllable", texts, unit="syllable", **small)
    return {"manifest": root / "all.jsonl", "phone": phone["adapter"], "syllable": spelling["base"], "root": root}


def test_assess_writes_verdicts_scores_and_report(prompted, tmp_path):
    out = tmp_path / "assessment"
    summary = assess(prompted["phone"], prompted["manifest"], str(out), CFG, progress=False)
    rows = {r["utt_id"]: r for r in load_manifest(prompted["manifest"])}
    lines = strict_json_lines(out / ASSESSMENT_FILE)
    assert json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8")) == summary
    assert len(lines) + summary["skipped"]["count"] == len(rows) and lines
    for line in lines:
        row = rows[line["utt_id"]]
        assert line["prompt"] == row["prompt"] and not line["prompt_from_text"]
        assert len(line["syllables"]) == len(syllables(text_phones(row["prompt"])))
        for entry in line["syllables"]:
            assert entry["verdict"] in ("correct", "substituted", "deleted")
            assert isinstance(entry["llr"], float)  # every syllable is scored
            assert entry["gop"] <= 0 and entry["start"] < entry["end"] <= row["duration"] + 0.05
            assert entry["gop"] == min(p["gop"] for p in entry["phones"])
            assert (entry["verdict"] != "correct") == DEFAULT_RULE.flags(entry["llr"], entry["gop"])
            assert entry["recognised"]["verdict"] in ("correct", "substituted", "deleted")
    assert summary["syllables"] == sum(len(line["syllables"]) for line in lines)
    assert sum(summary["verdicts"].values()) == summary["syllables"]
    assert summary["insertions_heard"] == sum(len(line["inserted"]) for line in lines)
    assert summary["threshold"] == {"value": DEFAULT_RULE.threshold, "gop_weight": 0.0, "source": "default"}
    truth = summary["ground_truth"]
    assert truth["injected_syllables"] == sum(len(rows[line["utt_id"]]["mispronunciations"]) for line in lines) > 0
    assert 0 <= truth["detection"]["f1"] <= 1 and 0 <= truth["gop_auc"] <= 1 and 0 <= truth["llr_auc"] <= 1
    per_process = truth["recall_per_process"]
    assert sum(r["errors"] for r in per_process.values()) == truth["injected_syllables"]
    assert sum(r["flagged"] for r in per_process.values()) == truth["detection"]["tp"]
    report = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "## Against the known mispronunciations" in report and "## Phone confusions" in report
    for chart in (PATTERNS_CHART, CONFUSION_CHART):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def strict_json_lines(path: Path) -> list[dict]:
    """The lines of a JSONL file, refusing NaN and Infinity (not JSON)."""

    def refuse(constant: str):
        raise ValueError(f"{path}: {constant} is not JSON")

    return [json.loads(x, parse_constant=refuse) for x in path.read_text(encoding="utf-8").splitlines()]


def test_rows_without_prompt_phones_are_skipped_and_empty_prompts_counted(prompted, tmp_path):
    rows = load_manifest(prompted["manifest"])
    punctuation, empty, kept = dict(rows[0], prompt="…?!"), dict(rows[1], prompt=" "), rows[4:]
    no_audio = dict(rows[2], audio_filepath=str(tmp_path / "gone.wav"))
    latin = dict(rows[3], prompt="TV를 봤다")  # Latin letters have no phone target (g2p: never converted)
    manifest = tmp_path / "odd.jsonl"
    manifest.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [punctuation, empty, no_audio, latin, *kept]),
        encoding="utf-8",
    )
    summary = assess(prompted["phone"], manifest, str(tmp_path / "out"), CFG, progress=False)
    lines = {line["utt_id"]: line for line in strict_json_lines(tmp_path / "out" / ASSESSMENT_FILE)}
    assert punctuation["utt_id"] not in lines and punctuation["utt_id"] in summary["skipped"]["utt_ids"]
    assert summary["skipped"]["by_reason"].get("no_prompt_phones") == 1
    assert latin["utt_id"] not in lines and summary["skipped"]["by_reason"].get("invalid_phones") == 1
    assert no_audio["utt_id"] not in lines and no_audio["utt_id"] in summary["skipped"]["utt_ids"]
    # An empty prompt: the transcript is assessed instead, and counted as such.
    assert lines[empty["utt_id"]]["prompt"] == empty["text"] and lines[empty["utt_id"]]["prompt_from_text"]
    assert summary["prompt_from_text"] == 1
    assert len(lines) + summary["skipped"]["count"] == len(rows)


def test_calibrate_writes_the_threshold_that_a_later_assessment_uses(prompted, tmp_path):
    def calibrate_into(folder: str, rate: float) -> dict:
        return assess(prompted["phone"], prompted["manifest"], str(tmp_path / folder), CFG, False, None, True, rate)

    calibrated = calibrate_into("cal", 0.05)
    written = json.loads((tmp_path / "cal" / CALIBRATION_FILE).read_text(encoding="utf-8"))
    assert written["threshold"] == calibrated["threshold"]["value"] and written["false_alarm_rate"] == 0.05
    # The budget holds on the calibration set itself: at most 5% of its correct syllables flagged.
    correct = calibrated["ground_truth"]["detection"]
    assert correct["fp"] <= 0.05 * (calibrated["syllables"] - calibrated["ground_truth"]["injected_syllables"])
    assert written["detection"] == calibrated["ground_truth"]["detection"]
    used = assess(prompted["phone"], prompted["manifest"], str(tmp_path / "a"), CFG, False, str(tmp_path / "cal"))
    assert used["threshold"] == {
        "value": written["threshold"],
        "gop_weight": written["gop_weight"],
        "source": str(tmp_path / "cal" / CALIBRATION_FILE),
        "false_alarm_rate": 0.05,
    }
    assert used["ground_truth"]["detection"] == written["detection"]  # same manifest, same threshold
    # The calibration folder's labelled lines give the leave-process-out figures, one per process.
    held_out = used["ground_truth"]["held_out"]
    assert set(held_out["per_process"]) == set(used["ground_truth"]["recall_per_process"])
    assert "Leave-process-out" in (tmp_path / "a" / REPORT_FILE).read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="calibrate"):
        assess(prompted["phone"], prompted["manifest"], str(tmp_path / "b"), CFG, False, str(tmp_path / "cal"), True)
    with pytest.raises(ConfigError, match="not found"):
        assess(prompted["phone"], prompted["manifest"], str(tmp_path / "c"), CFG, False, str(tmp_path / "none"))
    unlabelled = tmp_path / "unlabelled.jsonl"
    rows = [{k: v for k, v in r.items() if k != "mispronunciations"} for r in load_manifest(prompted["manifest"])]
    unlabelled.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ConfigError, match="ground truth"):
        assess(prompted["phone"], str(unlabelled), str(tmp_path / "d"), CFG, False, calibrate=True)
    with pytest.raises(ConfigError, match="false-alarm-rate"):
        calibrate_into("e", 1.5)


def test_a_calibration_set_whose_children_made_no_error_still_holds_the_budget(prompted, tmp_path):
    error_free = tmp_path / "error_free.jsonl"
    rows = [{**r, "mispronunciations": []} for r in load_manifest(prompted["manifest"])]
    error_free.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    calibrated = assess(prompted["phone"], str(error_free), str(tmp_path / "cal"), CFG, False, None, True, 0.05)
    assert calibrated["threshold"]["value"] != DEFAULT_RULE.threshold
    assert calibrated["threshold"]["gop_weight"] == 0.0
    # Every syllable is correct here: the rule flags at most the budget's share of them.
    assert 0 < calibrated["ground_truth"]["detection"]["fp"] <= 0.05 * calibrated["syllables"]


def _fft_speed(audio: np.ndarray, speed: float) -> np.ndarray:
    """A peer of trainer.data.audio.change_speed: band-limited resampling by zero-padding the
    spectrum (numpy's FFT, not soxr), the samples then read at the original rate."""
    n = round(len(audio) / speed)
    spectrum = np.fft.rfft(audio)
    padded = np.zeros(n // 2 + 1, dtype=complex)
    keep = min(len(spectrum), len(padded))
    padded[:keep] = spectrum[:keep]
    return (np.fft.irfft(padded, n) * n / len(audio)).astype(np.float32)


def test_a_slowed_assessment_hears_what_a_peer_slowed_recording_holds_and_keeps_the_recordings_times(
    prompted, tmp_path
):
    import soundfile as sf

    rows = load_manifest(prompted["manifest"])
    slowed_rows = []
    for row in rows:
        audio, rate = sf.read(row["audio_filepath"], dtype="float32")
        path = tmp_path / f"{row['utt_id']}.wav"
        sf.write(path, _fft_speed(audio, 0.9), rate)
        slowed_rows.append({**row, "audio_filepath": str(path), "duration": row["duration"] / 0.9})
    slowed = tmp_path / "slowed.jsonl"
    slowed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in slowed_rows), encoding="utf-8")

    at_speed = assess(prompted["phone"], prompted["manifest"], str(tmp_path / "a"), CFG, False, speed=0.9)
    assess(prompted["phone"], str(slowed), str(tmp_path / "p"), CFG, False)
    plain = assess(prompted["phone"], prompted["manifest"], str(tmp_path / "b"), CFG, False)
    assert at_speed["speed"] == 0.9 and plain["speed"] == 1.0
    lines = {n: strict_json_lines(tmp_path / n / ASSESSMENT_FILE) for n in ("a", "p", "b")}
    assert [x["utt_id"] for x in lines["a"]] == [x["utt_id"] for x in lines["p"]] == [x["utt_id"] for x in lines["b"]]
    llr = {n: np.array([e["llr"] for x in lines[n] for e in x["syllables"]]) for n in lines}
    # The model heard the slowed audio: its scores follow the peer's slowed files, not the originals.
    assert np.abs(llr["a"] - llr["p"]).mean() < 0.5 * np.abs(llr["a"] - llr["b"]).mean()
    # Times are the recording's: a frame of the slowed audio is 0.9 of one (20 ms) in the recording,
    # and no syllable ends after the recording does.
    frame = 0.02 * 0.9
    for x in lines["a"]:
        duration = next(r["duration"] for r in rows if r["utt_id"] == x["utt_id"])
        times = np.array([[e["start"], e["end"]] for e in x["syllables"]])
        assert np.allclose(times / frame, np.round(times / frame), atol=1e-6) and times.max() <= duration + frame


def test_a_calibration_holds_for_the_speed_it_was_made_at(prompted, tmp_path):
    cal = str(tmp_path / "cal")
    made = assess(prompted["phone"], prompted["manifest"], cal, CFG, False, None, True, 0.05, speed=0.9)
    assert json.loads((tmp_path / "cal" / CALIBRATION_FILE).read_text(encoding="utf-8"))["speed"] == 0.9
    # Read back without a speed: the calibration's own, so the same manifest scores the same.
    used = assess(prompted["phone"], prompted["manifest"], str(tmp_path / "a"), CFG, False, cal)
    assert used["speed"] == 0.9 and used["ground_truth"]["detection"] == made["ground_truth"]["detection"]
    with pytest.raises(ConfigError, match=r"--speed 1.0: .* speed 0.9"):
        assess(prompted["phone"], prompted["manifest"], str(tmp_path / "b"), CFG, False, cal, speed=1.0)
    with pytest.raises(ConfigError, match="--speed: must be within"):
        assess(prompted["phone"], prompted["manifest"], str(tmp_path / "c"), CFG, False, speed=5.0)


def test_evaluate_scores_a_phone_model_on_its_own_phones(prompted, tmp_path):
    from trainer.evaluation.evaluate import PREDICTIONS_FILE, evaluate

    report = evaluate(prompted["phone"], prompted["manifest"], str(tmp_path / "eval"), CFG, progress=False)
    assert report["model"]["unit"] == "phone" and report["g2p"].startswith("model-phones")
    predictions = [
        json.loads(x) for x in (tmp_path / "eval" / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    ]
    rows = {r["utt_id"]: r for r in load_manifest(prompted["manifest"])}
    for p in predictions:
        # The reference is what was said, pronounced; the hypothesis's phones are its own jamo.
        assert p["reference_phonemes"].replace(" ", "") == text_phones(rows[p["utt_id"]]["text"]).replace(" ", "")
        assert p["hypothesis_phonemes"].replace(" ", "") == to_phones(p["hypothesis"]).replace(" ", "")


def test_a_spelling_model_cannot_be_assessed(prompted, tmp_path):
    with pytest.raises(ConfigError, match="phone model"):
        assess(prompted["syllable"], prompted["manifest"], str(tmp_path / "x"), CFG, progress=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "assess",
            "--model",
            prompted["syllable"],
            "--manifest",
            str(prompted["manifest"]),
            "--output",
            str(tmp_path / "y"),
            "--num-workers",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 78 and "phone model" in done.stderr and "Traceback" not in done.stderr


def test_compare_assess_adds_the_phone_models_assessment(prompted, tmp_path):
    from trainer.compare import assessment_dir, compare
    from trainer.layout import ASSESSMENT_CALIBRATION_DIR
    from trainer.layout import COMPARISON_FILE as COMPARISON

    models = {"phone": prompted["phone"], "spelling": prompted["syllable"]}
    manifest = str(prompted["manifest"])
    summary = compare(
        models,
        {"test": manifest},
        str(tmp_path / "cmp"),
        CFG,
        progress=False,
        assess_phones=True,
        assess_calibration=manifest,
        assess_speed=0.9,
    )
    assert list(summary["assessments"]) == ["phone"]  # the spelling model is compared, not assessed
    assert summary["assessments"]["phone"]["speed"] == 0.9
    assert "ground_truth" in summary["assessments"]["phone"]
    calibration = tmp_path / "cmp" / ASSESSMENT_CALIBRATION_DIR / "phone" / CALIBRATION_FILE
    written = json.loads(calibration.read_text(encoding="utf-8"))
    assert written["speed"] == 0.9  # calibrated at the speed it is used at
    assert summary["assessments"]["phone"]["threshold"] == {
        "value": written["threshold"],
        "gop_weight": written["gop_weight"],
        "source": str(calibration),
        "false_alarm_rate": FALSE_ALARM_RATE,
    }
    assert (Path(assessment_dir(str(tmp_path / "cmp"), "phone")) / REPORT_FILE).is_file()
    report = (tmp_path / "cmp" / COMPARISON).read_text(encoding="utf-8")
    assert "## Pronunciation assessment" in report and "| phone | 0 |" not in report
    assert f"Details per model in `assessment/<model>/{REPORT_FILE}`" in report and "Held-out recall" in report
    assert "| spelling | - | syllable |" in report and "| phone | 4 | phone |" in report
    assert "played at speed 0.9" in (Path(assessment_dir(str(tmp_path / "cmp"), "phone")) / REPORT_FILE).read_text(
        encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="--assess-speed: .* give --assess"):
        compare(models, {"test": manifest}, str(tmp_path / "c3"), CFG, progress=False, assess_speed=0.9)
    with pytest.raises(ConfigError, match="none of the models writes phones"):
        compare(
            {"spelling": prompted["syllable"]},
            {"test": str(prompted["manifest"])},
            str(tmp_path / "c2"),
            CFG,
            progress=False,
            assess_phones=True,
        )


def test_an_onnx_export_of_a_phone_model_is_assessed_like_the_model(prompted, tmp_path):
    from trainer.cli import main
    from trainer.model.onnx_runtime import ONNX_DIR, ONNX_FILES

    export = tmp_path / "export"
    assert main(["export", "--adapter", prompted["phone"], "--output", str(export), "--format", "onnx"]) == 0
    onnx = assess(
        str(export / ONNX_DIR / ONNX_FILES["onnx"]), prompted["manifest"], str(tmp_path / "onnx"), CFG, progress=False
    )
    torch = assess(prompted["phone"], prompted["manifest"], str(tmp_path / "torch"), CFG, progress=False)
    assert onnx["utterances"] == torch["utterances"] and onnx["syllables"] == torch["syllables"]
    lines = {
        name: [json.loads(x) for x in (tmp_path / name / ASSESSMENT_FILE).read_text(encoding="utf-8").splitlines()]
        for name in ("onnx", "torch")
    }
    assert [x["expected"] for x in lines["onnx"]] == [x["expected"] for x in lines["torch"]]
    assert [x["gop"] for x in lines["onnx"]] == pytest.approx([x["gop"] for x in lines["torch"]], abs=1e-3)


def _line(scores: list[float], errors: dict[int, str], gops: list[float] | None = None) -> dict:
    gops = gops or [0.0] * len(scores)
    return {
        "syllables": [{"index": i, "llr": llr, "gop": gop} for i, (llr, gop) in enumerate(zip(scores, gops))],
        "mispronunciations": [{"syllable": i, "pattern": p} for i, p in errors.items()],
    }


def test_held_out_figures_calibrate_without_the_scored_process():
    from trainer.assessment.assess import held_out_scores

    # Calibration: correct syllables score 1-4 (GOP 0); process a's errors have llr -5, b's llr 2.5
    # with GOP -2: only GOP finds b. With b's errors the rule weighs GOP in; without them it has no
    # reason to (a is found either way), so b scored as a new process is missed.
    calibration = [_line([1.0, -5.0, 2.0, 2.5, 3.0, 4.0], {1: "a", 3: "b"}, [0.0, 0.0, 0.0, -2.0, 0.0, 0.0])]
    test = [_line([-5.0, 2.5, 3.0, 1.5], {0: "a", 1: "b"}, [0.0, -2.0, 0.0, 0.0])]
    held = held_out_scores(calibration, test, FALSE_ALARM_RATE)["per_process"]
    assert held["b"]["rule"]["gop_weight"] == 0 and held["b"]["recall"] == 0.0 and held["b"]["errors"] == 1
    # a's error is left out of b's figures (the -5 syllable flagged is neither a tp nor an fp of b).
    assert held["b"]["fp"] == 0 and held["b"]["fn"] == 1
    assert held["a"]["rule"]["gop_weight"] > 0
    assert held["a"]["recall"] == 1.0 and held["a"]["precision"] == 1.0


def test_a_damaged_calibration_assessment_is_named_not_a_traceback(tmp_path):
    from trainer.assessment.assess import read_labelled_lines

    (tmp_path / ASSESSMENT_FILE).write_text('{"utt_id": "a"}\n{"utt_id": \n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{ASSESSMENT_FILE}:2: not a JSON line"):
        read_labelled_lines(str(tmp_path))
    (tmp_path / ASSESSMENT_FILE).write_text('{"utt_id": "a", "mispronunciations": []}\n\n', encoding="utf-8")
    assert read_labelled_lines(str(tmp_path)) == [{"utt_id": "a", "mispronunciations": []}]


def test_a_calibration_says_the_false_alarm_rate_only_where_it_was_calibrated_for_one(tmp_path):
    from trainer.assessment.assess import read_rule

    calibration = tmp_path / CALIBRATION_FILE
    # Written before the budget (no rate): the rule is read, and no rate is claimed for it.
    # Written before the speed: the recordings were played as they are.
    calibration.write_text(json.dumps({"threshold": -2.5, "gop_weight": 1.0}), encoding="utf-8")
    assert read_rule(str(tmp_path)) == (Rule(-2.5, 1.0), None, 1.0)
    calibration.write_text(json.dumps({"threshold": -2.5, "gop_weight": 1.0, "false_alarm_rate": 0.02}), "utf-8")
    assert read_rule(str(tmp_path)) == (Rule(-2.5, 1.0), 0.02, 1.0)
    calibration.write_text(json.dumps({"threshold": -2.5, "gop_weight": 1.0, "speed": 0.9}), "utf-8")
    assert read_rule(str(tmp_path)) == (Rule(-2.5, 1.0), None, 0.9)
    for bad, message in ((0.1, "field speed: must be within"), ("0.9", "field speed must be a number")):
        calibration.write_text(json.dumps({"threshold": -2.5, "gop_weight": 1.0, "speed": bad}), "utf-8")
        with pytest.raises(ConfigError, match=message):
            read_rule(str(tmp_path))
    calibration.write_text(json.dumps({"threshold": -2.5, "gop_weight": 1.0, "false_alarm_rate": "1%"}), "utf-8")
    with pytest.raises(ConfigError, match="field false_alarm_rate must be a number"):
        read_rule(str(tmp_path))
