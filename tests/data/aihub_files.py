"""Writers of AI Hub-style files for the importer tests: a short noise wav and a label JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def audio_file(path: Path, seconds: float, rate: int = RATE, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    data = (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data if channels > 1 else data[:, 0], rate, subtype="PCM_16")
    return path


def label_file(
    path: Path, stt=None, speaker="1000000001-1", age=7, gender="여", file_name=None, bom=False, raw=None, seconds=None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is None:
        label = {"발화정보": {"fileNm": file_name or path.stem + ".wav"}}
        if seconds is not None:
            label["발화정보"]["recrdTime"] = f"{seconds:.3f}"
        if stt is not None:
            label["발화정보"]["stt"] = stt
        if speaker is not None:
            label["녹음자정보"] = {"recorderId": speaker, "age": age, "gender": gender}
        raw = json.dumps(label, ensure_ascii=False)
    path.write_bytes(("\ufeff" if bom else "").encode() + raw.encode("utf-8"))
    return path
