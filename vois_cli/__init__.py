"""vois: video object of interest segmentation (Zhou et al., AAAI)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from vois_cli import Predictor, build_model` without importing torch on import."""
    if name == "Predictor":
        from vois_cli.inference import Predictor

        return Predictor
    if name == "build_model":
        from vois_cli.models import build_model

        return build_model
    raise AttributeError(f"module 'vois_cli' has no attribute {name!r}")
