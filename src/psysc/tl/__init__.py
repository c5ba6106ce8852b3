"""Tools: per-cell disease scores and cell-state enrichment."""

from ._enrichment import disorder_enrichment
from ._score import score_disorders

__all__ = ["disorder_enrichment", "score_disorders"]
