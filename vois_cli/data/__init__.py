"""Data formats and loaders: annotations, predictions, frames, the synthetic benchmark."""
