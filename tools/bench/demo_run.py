"""Where a finished local demo run keeps its data, base and phases: the benches that read one
(bench_transfer, bench_demo_step) ask the demo's own plan, as tools/submit.py builds it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainer import layout as L
from trainer.config import PHASES
from trainer.exit_codes import ConfigError
from trainer.pipeline import plan as P
from trainer.pipeline.submit_cli import build_config, build_parser


@dataclass(frozen=True)
class DemoRun:
    flags: list[str]  # the tools/submit.py flags that made it
    run_dir: str
    data: str
    base: str
    phases: list[str]  # phase output folders, 1..3


def locate(preset: str, rank: int, storage: str, need_phases: bool = True) -> DemoRun:
    """The demo run `tools/submit.py --phase all --rank RANK --local --preset PRESET --storage STORAGE`
    made; ConfigError when it has not finished (its phases, or else its base)."""
    flags = ["--phase", "all", "--rank", str(rank), "--local", "--preset", preset, "--storage", storage]
    cfg = build_config(build_parser().parse_args(flags))
    root = str(Path(storage))
    run_dir = P.slash_join(root, P.build_plan(cfg, root).run)
    demo = DemoRun(
        flags,
        run_dir,
        P.data_dir(cfg, root),
        P.base_model(cfg, root),
        [P.phase_dir(run_dir, rank, phase) for phase in PHASES],
    )
    wanted = [Path(p, L.METRICS_FILE) for p in demo.phases] if need_phases else [Path(demo.base, "config.json")]
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        raise ConfigError(
            f"{missing[0].parent}: not finished; run the demo first (make demo, or tools/submit.py {' '.join(flags)})"
        )
    return demo
