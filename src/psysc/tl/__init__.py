"""Tools: per-cell disease scores, cell-state enrichment and disorder contrasts."""

from ._celltype import celltype_enrichment, celltype_specificity, specific_gene_sets, specificity_table
from ._contrast import combine_evidence, disorder_contrast
from ._embed import embed
from ._enrichment import disorder_enrichment
from ._score import score_disorders

__all__ = [
    "celltype_enrichment",
    "celltype_specificity",
    "combine_evidence",
    "disorder_contrast",
    "disorder_enrichment",
    "embed",
    "score_disorders",
    "specific_gene_sets",
    "specificity_table",
]
