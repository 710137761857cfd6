"""The training step leaves the host free to run ahead of the device: outside log steps it issues
none of the operations that make a CUDA host wait (reading a device value, data-dependent shapes,
boolean-index writes of tensors), and its loss and gradients are those of transformers' own
Wav2Vec2ForCTC(labels=...) path.

On CPU nothing waits, so the operations are recorded at the ATen dispatcher (TorchDispatchMode)
and the Python methods that copy to the host are patched, during one step on collated batches.
"""

from __future__ import annotations

import traceback

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from trainer.training.loop import TrainingRun
from trainer.training.methods import LoraMethod
from trainer.training.run_log import Window
from trainer.training.spec_augment import TimeMasks

from .helpers import smoke_config

# Ops whose CUDA kernels make the host wait: a device value read on the host (.item(), bool(),
# .tolist()), and outputs whose size depends on the data.
WAITING_OPS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default"}
HOST_COPIES = ("item", "tolist", "cpu", "numpy")


def _boolean_index(args) -> bool:
    return len(args) > 1 and any(
        isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if isinstance(args[1], list) else [])
    )


class WaitRecorder(TorchDispatchMode):
    """Records (file, function, op) of every op that would make a CUDA host wait."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: list[tuple[str, str, str]] = []

    def record(self, op: str) -> None:
        frame = next(f for f in reversed(traceback.extract_stack()[:-2]) if "torch/" not in f.filename)
        self.sites.append((frame.filename.rsplit("/", 1)[-1], frame.name, op))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in WAITING_OPS:
            self.record(name)
        elif name.startswith(("aten.index_put", "aten.index.")) and _boolean_index(args):
            value = args[2] if name.startswith("aten.index_put") else None
            # `x[mask] = scalar` becomes masked_fill (no wait); anything else goes through nonzero.
            if value is None or value.numel() != 1 or value.device.type != "cpu":
                self.record(name)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def run(smoke_data, tmp_path):
    cfg = smoke_config(smoke_data, tmp_path / "run", grad_accum=2, mask_time_prob=0.5)
    return TrainingRun(cfg, LoraMethod())


def _batches(run: TrainingRun, n: int) -> list[dict]:
    plan = run.data.sampler.epoch_batches(0)
    loader = run.data.loader(run.data.train_set, run._epoch_keys(0, plan, 0, n), run.collator)
    return list(loader)


def test_training_step_makes_the_host_wait_nowhere(run, monkeypatch):
    batches = _batches(run, 2)
    assert all(b["mask_time_indices"].any() for b in batches)  # SpecAugment is on in these steps
    run.window, run.shapes_seen = Window(), set()
    run._train_step(iter(batches))  # first step: lazy state (optimizer) is created
    recorder = WaitRecorder()
    for method in HOST_COPIES:
        original = getattr(torch.Tensor, method)

        def copy_to_host(self, *args, _original=original, _method=method, **kwargs):
            recorder.record(f"Tensor.{_method}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, copy_to_host)
    with recorder:
        run._train_step(iter(batches))
    monkeypatch.undo()
    assert recorder.sites == []


def test_the_recorder_sees_transformers_own_step(run):
    """The same step through Wav2Vec2ForCTC(labels=...) with masks drawn in the forward waits."""
    batch = _batches(run, 1)[0]
    model = run.acc.unwrap_model(run.model)
    model.train()
    with WaitRecorder() as recorder:
        model(input_values=batch["input_values"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    functions = {site[1] for site in recorder.sites}
    assert {"forward", "_mask_hidden_states", "ForCTCLoss"} <= functions
    run.base.set_attn_implementation("sdpa")  # transformers' own sdpa asks the mask whether it has padding
    model.eval()  # no SpecAugment
    with WaitRecorder() as recorder:
        model(input_values=batch["input_values"], attention_mask=batch["attention_mask"])
    assert {site[1] for site in recorder.sites} == {"_ignore_bidirectional_mask_sdpa"}


def _loss_and_grads(run: TrainingRun, batch: dict, ours: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model = run.acc.unwrap_model(run.model)
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # dropout
    if ours:
        loss = run._forward_loss(batch)
    else:
        loss = model(
            input_values=batch["input_values"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            mask_time_indices=batch["mask_time_indices"],
        ).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in run.trainable]


def test_loss_and_gradients_equal_transformers(run):
    batch = _batches(run, 1)[0]
    base = run.base.wav2vec2
    ours = _loss_and_grads(run, batch, ours=True)
    # transformers' own masking (a boolean-index write) with the same masks
    base._mask_hidden_states = type(base)._mask_hidden_states.__get__(base)
    theirs = _loss_and_grads(run, batch, ours=False)
    assert torch.isfinite(ours[0]) and ours[0] > 0
    torch.testing.assert_close(ours[0], theirs[0])
    assert len(ours[1]) == len(theirs[1]) > 0
    for mine, hf in zip(ours[1], theirs[1]):
        torch.testing.assert_close(mine, hf)


def test_time_masks_depend_on_the_seed_only():
    masks = TimeMasks(prob=0.5, length=3, min_masks=0)
    np.random.seed(7)
    state = np.random.get_state()[1].copy()
    first = masks.draw([40, 25], 40, [1, 0, 5, 1, 0, 9])
    assert np.array_equal(np.random.get_state()[1], state)  # the global stream is left as it was
    np.random.seed(8)
    assert torch.equal(first, masks.draw([40, 25], 40, [1, 0, 5, 1, 0, 9]))
    assert not torch.equal(first, masks.draw([40, 25], 40, [1, 1, 5, 1, 1, 9]))  # another epoch
    assert first[:, :25].any(dim=1).all() and not first[1, 25:].any()  # within each utterance's frames


def test_evaluations_reuse_one_loader_and_its_workers(run):
    run.data.num_workers = 1
    first = run.evaluate()
    loader = run.validation.loader
    workers = loader._iterator  # a persistent loader keeps its worker processes here between passes
    assert workers is not None and loader.persistent_workers
    assert run.evaluate() == first
    assert run.validation.loader is loader and loader._iterator is workers
    widths = [batch["input_values"].shape[1] for batch in loader]
    assert widths and all(int(run.ladder.padded_samples(w)) == w for w in widths)  # rungs of the length ladder
