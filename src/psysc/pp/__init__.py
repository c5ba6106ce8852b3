"""Preprocessing: prepare expression data for disease scoring, and rename its genes."""

from ._genes import map_genes
from ._prepare import prepare_scoring, write_normalized

__all__ = ["map_genes", "prepare_scoring", "write_normalized"]
