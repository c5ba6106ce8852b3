"""Plotting: figures of disease scores and cell-state enrichment.

Plot functions only draw what the tools stored; they never compute statistics.
"""

from ._celltype import contrast, enrichment_dotplot
from ._enrichment import enrichment_heatmap
from ._scores import scores

__all__ = ["contrast", "enrichment_dotplot", "enrichment_heatmap", "scores"]
