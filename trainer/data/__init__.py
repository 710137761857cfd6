"""Data layer: manifests, importers, synthetic corpus, text, splits, curriculum, audio."""
