"""Preprocessing: prepare expression data for disease scoring."""

from ._prepare import prepare_scoring, write_normalized

__all__ = ["prepare_scoring", "write_normalized"]
