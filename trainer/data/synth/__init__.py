"""Synthetic Korean speech of children (3-10) and adults in the AI Hub layout, for demos and tests.

`synthesize_corpus(out_dir, n_child_speakers, n_adult_speakers, utterances_per_speaker, seed,
workers)` is the entry point (also `python -m trainer data synth`). How child voices are made to
differ from adult ones, with the parameters per age: trainer.data.synth.speakers.
"""

from trainer.data.synth.corpus import SUMMARY_FILE, synthesize_corpus

__all__ = ["SUMMARY_FILE", "synthesize_corpus"]
