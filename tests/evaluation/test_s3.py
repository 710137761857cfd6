"""Models and reports on S3 (a real SeaweedFS server): evaluate an adapter stored at s3://, write
its results and a comparison to s3://, reuse them from there."""

import json
import shutil

from trainer.compare import REPORT_FILE, SUMMARY_FILE, compare
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import METRICS_FILE, PREDICTIONS_FILE, evaluate, read_report
from trainer.evaluation.report import AGE_CHART, METRICS_CHART
from trainer.storage import MARKER, open_store

CFG = EvalConfig(num_workers=0, bootstrap=50, g2p="espeak")


def test_evaluate_and_compare_on_s3(s3_env, eval_models, eval_corpus, tmp_path):
    bucket = s3_env.new_bucket()
    models = open_store(f"s3://{bucket}/models")
    staged = models.staging_dir("adapter")
    shutil.copytree(eval_models["adapter"], staged, dirs_exist_ok=True)
    (staged / MARKER).unlink()
    models.publish(staged, "adapter")
    adapter_uri = f"s3://{bucket}/models/adapter"

    out = f"s3://{bucket}/eval/adapter"
    report = evaluate(adapter_uri, eval_corpus["test"], out, CFG, progress=False)
    assert read_report(out) == report
    keys = {o["Key"] for o in s3_env.client().list_objects_v2(Bucket=bucket, Prefix="eval/")["Contents"]}
    assert {f"eval/adapter/{n}" for n in (METRICS_FILE, PREDICTIONS_FILE, MARKER)} <= keys
    assert report["model"]["kind"] == "adapter" and report["test_set"]["scored"] == 12

    report_uri = f"s3://{bucket}/report"
    summary = compare(
        {"base": eval_models["base"], "r4": adapter_uri},
        {"test": str(eval_corpus["test"])},
        report_uri,
        CFG,
        progress=False,
    )
    client = s3_env.client()
    stored = json.loads(client.get_object(Bucket=bucket, Key=f"report/{SUMMARY_FILE}")["Body"].read())
    assert stored == summary
    for name in (REPORT_FILE, METRICS_CHART, AGE_CHART, f"runs/r4/test/{METRICS_FILE}"):
        assert client.head_object(Bucket=bucket, Key=f"report/{name}")["ContentLength"] > 0
    # Run again: the finished runs are read back from S3, not evaluated again.
    before = client.head_object(Bucket=bucket, Key=f"report/runs/r4/test/{METRICS_FILE}")["LastModified"]
    compare(
        {"base": eval_models["base"], "r4": adapter_uri},
        {"test": str(eval_corpus["test"])},
        report_uri,
        CFG,
        progress=False,
    )
    assert client.head_object(Bucket=bucket, Key=f"report/runs/r4/test/{METRICS_FILE}")["LastModified"] == before


def test_onnx_export_to_s3_and_evaluated_from_there(s3_env, eval_models, eval_corpus):
    from trainer.evaluation.export import export_merged

    bucket = s3_env.new_bucket()
    export_merged(eval_models["adapter"], f"s3://{bucket}/export", ["onnx-int8"])
    report = evaluate(
        f"s3://{bucket}/export/onnx/model_quantized.onnx",
        eval_corpus["test"],
        f"s3://{bucket}/eval",
        CFG,
        progress=False,
    )
    assert (report["model"]["kind"], report["model"]["r"]) == ("onnx-int8", 4)
    assert report["test_set"]["scored"] == 12
