"""Tools: per-cell disease scores and cell-state enrichment."""

from ._embed import embed
from ._enrichment import disorder_enrichment
from ._score import score_disorders

__all__ = ["disorder_enrichment", "embed", "score_disorders"]
