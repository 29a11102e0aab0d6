"""Generic training: loop, early stopping, seeding, checkpoints."""

from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import LOSS_TERMS, TrainConfig
from graphrec.training.sampling import NegativeSampler
from graphrec.training.seed import seed_everything
from graphrec.training.trainer import train_graphrec

__all__ = ["LOSS_TERMS", "NegativeSampler", "TrainConfig", "load_checkpoint", "save_checkpoint", "seed_everything", "train_graphrec"]
