"""Pronunciation assessment with phone-unit models: forced alignment, GOP, per-syllable verdicts."""
