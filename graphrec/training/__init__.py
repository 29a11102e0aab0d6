"""Generic training: the one loop, early stopping, seeding, checkpoints, negative sampling."""

from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.config import LOSS_TERMS, TrainConfig
from graphrec.training.loop import EarlyStopping, FitState, fit
from graphrec.training.sampling import NegativeSampler
from graphrec.training.seed import seed_everything, torch_threads

__all__ = ["LOSS_TERMS", "EarlyStopping", "FitState", "NegativeSampler", "TrainConfig", "fit", "load_checkpoint",
           "save_checkpoint", "seed_everything", "torch_threads"]
