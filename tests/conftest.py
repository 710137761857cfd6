"""Shared pytest setup: keep CPU threads polite on a shared 2-core machine, register markers."""

import os

# A busy second process makes OpenMP spin-waits 10x slower; passive waiting costs ~5% when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
