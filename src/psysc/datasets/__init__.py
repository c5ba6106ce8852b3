"""Small real datasets shipped with psysc, so the main job runs offline."""

from ._darmanis import darmanis2015
from ._gene_sets import CONTRAST_TRAITS, PSYCHIATRIC_TRAITS, TRAIT_ALIASES, gwas_gene_sets

__all__ = ["darmanis2015", "gwas_gene_sets", "PSYCHIATRIC_TRAITS", "CONTRAST_TRAITS", "TRAIT_ALIASES"]
