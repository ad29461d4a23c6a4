"""Weights and checkpoint file kinds, by suffix: what every layer that reads a weights file, or
guesses a file's kind, agrees on (torch_impl's loader, the fine-tuning core, parity's converter)."""

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")  # torch.save files (loaded with weights_only=True)
TORCH_SUFFIXES = PICKLE_SUFFIXES + (".safetensors",)  # every torch checkpoint kind, wherever a file kind is guessed
