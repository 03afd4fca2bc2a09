"""Model families, registered lazily so `vidbench ls models` does not import them all.

Each entry is a factory `f(preset=..., **overrides) -> VideoModel`; presets live beside the model code.
"""

from vidbench.models.base import VideoModel, create_model, list_models, model_from_config
from vidbench.registry import MODELS

MODELS.add("copy-last", "vidbench.models.trivial:copy_last", about="repeats the last context frame")
MODELS.add("context-mean", "vidbench.models.trivial:context_mean",
           about="repeats the per-pixel mean of the context frames (the blur predictor)")
MODELS.add("random-frame", "vidbench.models.trivial:random_frame", about="random training frames (the paper's 'random' line)")
MODELS.add("cwvae", "vidbench.models.cwvae:cwvae", about="Clockwork VAE (Saxena et al. 2021)")
MODELS.add("notmpabs", "vidbench.models.cwvae:notmpabs", about="CW-VAE without temporal abstraction (k=1)")
MODELS.add("rssm", "vidbench.models.cwvae:rssm", about="one-level CW-VAE (RSSM, Hafner et al. 2019)")
MODELS.add("svg", "vidbench.models.svg:svg", about="SVG-LP (Denton & Fergus 2018)")
MODELS.add("vta", "vidbench.models.vta:vta", about="Variational Temporal Abstraction (Kim et al. 2019)")

__all__ = ["VideoModel", "create_model", "list_models", "model_from_config"]
