"""vois: video object of interest segmentation (Zhou et al., AAAI)."""

__version__ = "0.1.0"
