"""The local runner: steps in plan order once their dependencies are done (one at a time unless
maxParallel says more), a failure stops what depends on it, resume where it stopped.

The trainer is replaced by tests/pipeline/fake_trainer.py through run_local's `command` parameter,
so these tests check the chaining logic, not training (the end-to-end run is the integration test).
"""

from __future__ import annotations

import pytest

from trainer import exit_codes

from .fake_chain import Fake, plan_with, run


def test_runs_every_step_in_plan_order_then_reports_where_things_are(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    assert run(plan, tmp_path, lines) == exit_codes.OK
    assert fake.calls() == [
        "synth",
        "prepare",
        "base",
        "r16-p1",
        "r16-p2",
        "r16-p3",
        "r32-p1",
        "r32-p2",
        "r32-p3",
        "eval",
    ]
    summary = lines[-1]
    assert f"tensorboard --logdir {plan.logdir}" in summary
    assert f"{plan.report_dir}/comparison.md" in summary
    assert f"{plan.logdir}/r32/phase3/checkpoint-best" in summary
    assert "fake trainer: train done" in (tmp_path / "logs" / "loc-r16-p1.log").read_text(encoding="utf-8")


def test_a_second_run_skips_finished_phases(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    run(plan, tmp_path, lines)
    fake.calls()
    assert run(plan, tmp_path, lines) == exit_codes.OK
    # the shared steps check their own inputs (they are cheap no-ops when up to date)
    assert fake.calls() == ["synth", "prepare", "base"]
    assert sum("skipped" in line for line in lines) == 7


def test_stops_at_the_first_failure_and_resumes_there(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(fail={"--phase 2 --rank 32": exit_codes.PREEMPTED})
    assert run(plan, tmp_path, lines) == exit_codes.PREEMPTED
    assert fake.calls()[-2:] == ["r32-p1", "r32-p2"]  # nothing after the failed step
    assert any("run the same command again" in line for line in lines)
    fake.configure()
    assert run(plan, tmp_path, lines) == exit_codes.OK
    assert fake.calls() == ["synth", "prepare", "base", "r32-p2", "r32-p3", "eval"]


def test_a_config_error_stops_the_chain_with_its_code(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(fail={"pretrain-base": exit_codes.CONFIG_ERROR})
    assert run(plan, tmp_path, lines) == exit_codes.CONFIG_ERROR
    assert fake.calls() == ["synth", "prepare", "base"]
    assert any("configuration error" in line for line in lines)


def test_success_without_completion_markers_is_a_failure(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(no_markers=["--phase 1 --rank 16"])
    assert run(plan, tmp_path, lines) == exit_codes.FAILED
    calls = fake.calls()
    assert "r16-p1" in calls and "r16-p2" not in calls and "eval" not in calls
    assert any("completion markers are missing" in line for line in lines)


def test_with_max_parallel_2_both_ranks_chains_run_side_by_side(tmp_path, monkeypatch) -> None:
    plan = plan_with(tmp_path, 2)
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    # Each rank's phase 1 waits until the other's has started: run one after the other, they fail.
    fake.configure(
        together={"dir": str(tmp_path / "rendezvous"), "steps": ["--phase 1 --rank 16", "--phase 1 --rank 32"]}
    )
    assert run(plan, tmp_path, lines) == exit_codes.OK
    calls = fake.calls()
    assert calls[:3] == ["synth", "prepare", "base"] and calls[-1] == "eval"  # eval after both chains
    assert sorted(calls[3:-1]) == ["r16-p1", "r16-p2", "r16-p3", "r32-p1", "r32-p2", "r32-p3"]
    for rank in (16, 32):
        assert [c for c in calls if c.startswith(f"r{rank}")] == [f"r{rank}-p1", f"r{rank}-p2", f"r{rank}-p3"]
    assert "fake trainer: train done" in (tmp_path / "logs" / "loc-r32-p1.log").read_text(encoding="utf-8")


def test_one_at_a_time_the_rendezvous_fails(plan, tmp_path, monkeypatch) -> None:
    """The side-by-side check can fail: with maxParallel 1, the first phase 1 waits in vain."""
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(
        together={
            "dir": str(tmp_path / "rendezvous"),
            "steps": ["--phase 1 --rank 16", "--phase 1 --rank 32"],
            "wait_seconds": 1,
        }
    )
    assert run(plan, tmp_path, lines) == exit_codes.FAILED
    assert "r16-p2" not in fake.calls()
    assert "never started" in (tmp_path / "logs" / "loc-r16-p1.log").read_text(encoding="utf-8")


def test_a_failure_stops_only_its_own_chain(tmp_path, monkeypatch) -> None:
    plan = plan_with(tmp_path, 2)
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(fail={"--phase 2 --rank 16": exit_codes.FAILED})
    assert run(plan, tmp_path, lines) == exit_codes.FAILED
    calls = fake.calls()
    assert {"r32-p1", "r32-p2", "r32-p3"} <= set(calls)  # the other rank's chain finished
    assert "r16-p3" not in calls and "eval" not in calls  # what needs r16 phase 2 did not start
    assert any("loc-r16-p3: not started (loc-r16-p2 failed)" in line for line in lines)
    assert any("loc-eval: not started (loc-r16-p2 failed)" in line for line in lines)


def test_ctrl_c_stops_every_running_step_through_its_checkpoint_path(tmp_path, monkeypatch, request) -> None:
    import signal
    import threading

    # A shell starts a background job (`pytest ... &`) with SIGINT ignored; a terminal's Ctrl-C is
    # what this test stands for, so Python's own handler is put back for its duration.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    plan = plan_with(tmp_path, 2)
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    armed = tmp_path / "armed"
    fake.configure(until_sigterm={"steps": ["--phase 1 --rank"], "armed_dir": str(armed)})

    def press_ctrl_c() -> None:  # once both phase-1 steps run (side by side), as a user at the terminal would
        while not (armed.exists() and len(list(armed.iterdir())) == 2):
            threading.Event().wait(0.05)
        # The kernel may hand a process's SIGINT to any of its threads; here, to this one, not to the
        # main thread waiting for the steps (the case the full suite, with more threads, ran into).
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    code = run(plan, tmp_path, lines)
    # What a failure here needs to be understood: whether this process still turns SIGINT into
    # KeyboardInterrupt (it fails only late in the full suite, not alone), and what the run said.
    assert code == exit_codes.PREEMPTED, (code, signal.getsignal(signal.SIGINT), lines[-4:])
    assert sorted(fake.calls()[-2:]) == ["r16-p1", "r32-p1"]  # nothing started after Ctrl-C
    for rank in (16, 32):
        assert "SIGTERM, checkpoint saved" in (tmp_path / "logs" / f"loc-r{rank}-p1.log").read_text(encoding="utf-8")
    assert any("run the same command again" in line for line in lines)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_the_summary_shows_the_charts_and_the_headline_table_on_either_storage(backend, tmp_path, request) -> None:
    from trainer.pipeline import values_io
    from trainer.pipeline.local import summary
    from trainer.pipeline.plan import build_plan
    from trainer.storage import join, publish_files

    root = str(tmp_path / "runs")
    if backend == "s3":
        root = f"s3://{request.getfixturevalue('s3_env').new_bucket()}/runs"
    plan = build_plan(values_io.from_values({"runName": "loc", "embeddedDefault": True, "ranks": [32]}), root)
    table = "| model | CER |\n|---|---|\n| r32 | 50.0% |"

    def write(folder) -> None:
        (folder / "cer_by_age.png").write_bytes(b"png")
        (folder / "comparison.md").write_text(f"# Comparison\n\n{table}\n\nmore text\n", encoding="utf-8")

    publish_files(plan.report_dir, write, last="comparison.md")
    text = summary(plan, tmp_path / "logs")
    assert f"  chart:         {join(plan.report_dir, 'cer_by_age.png')}" in text.splitlines()
    assert text.endswith("\n" + table)
