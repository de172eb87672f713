"""The network: dual-path Swin backbone, DETR decoder, sequence matcher, losses, postprocess."""

from vois_cli.models.vois import build_model, parameter_groups

__all__ = ["build_model", "parameter_groups"]
