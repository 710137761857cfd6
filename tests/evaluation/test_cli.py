"""The `evaluate`, `compare` and `export` commands through the project's CLI dispatcher."""

import json

from trainer import exit_codes
from trainer.cli import main


def test_evaluate_export_and_compare_commands(eval_models, eval_corpus, tmp_path):
    out = tmp_path / "eval"
    common = ["--num-workers", "0", "--bootstrap", "50", "--g2p", "espeak"]
    assert (
        main(
            [
                "evaluate",
                "--model",
                eval_models["adapter"],
                "--manifest",
                str(eval_corpus["test"]),
                "--output",
                str(out),
                *common,
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["g2p"].startswith("espeak-ng") and metrics["speed"]["batch_seconds"] == 10.0
    assert len((out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 12

    assert main(["export", "--adapter", eval_models["adapter"], "--output", str(tmp_path / "merged")]) == 0
    report = tmp_path / "report"
    argv = [
        "compare",
        "--model",
        f"base={eval_models['base']}",
        "--model",
        f"merged={tmp_path / 'merged'}",
        "--manifest",
        str(eval_corpus["test"]),
        "--manifest-extra",
        f"adult={eval_corpus['adult']}",
        "--output",
        str(report),
        *common,
    ]
    assert main(argv) == 0
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in summary["models"]] == ["base", "merged"]
    assert list(summary["test_sets"]) == ["test", "adult"]


def test_bad_arguments_exit_with_config_error(eval_models, tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    code = main(
        ["evaluate", "--model", eval_models["base"], "--manifest", str(missing), "--output", str(tmp_path / "o")]
    )
    assert code == exit_codes.CONFIG_ERROR
    assert str(missing) in capsys.readouterr().err
    code = main(["compare", "--model", "no-equals-sign", "--manifest", str(missing), "--output", str(tmp_path / "o")])
    assert code == exit_codes.CONFIG_ERROR
    assert "--model: expected NAME=VALUE" in capsys.readouterr().err
    code = main(["export", "--adapter", eval_models["base"], "--output", str(tmp_path / "m")])
    assert code == exit_codes.CONFIG_ERROR
    assert "not a LoRA adapter" in capsys.readouterr().err
