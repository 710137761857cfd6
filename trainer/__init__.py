"""Korean children's speech recognition: wav2vec2 + LoRA fine-tuning as Kubernetes batch jobs."""

__version__ = "0.1.0"
