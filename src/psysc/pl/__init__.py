"""Plotting: figures of disease scores and cell-state enrichment.

Plot functions only draw what the tools stored; they never compute statistics.
"""

from ._enrichment import enrichment_heatmap
from ._scores import scores

__all__ = ["enrichment_heatmap", "scores"]
