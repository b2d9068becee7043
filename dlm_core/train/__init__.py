"""Training for quickturn's own diffusion LMs (masked-diffusion ELBO, resumable)."""

from .trainer import TrainConfig, Trainer, main

__all__ = ["TrainConfig", "Trainer", "main"]
