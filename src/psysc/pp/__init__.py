"""Preprocessing: prepare expression data for disease scoring."""

from ._prepare import prepare_scoring

__all__ = ["prepare_scoring"]
