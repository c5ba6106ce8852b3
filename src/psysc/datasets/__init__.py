"""Small real datasets shipped with psysc, so the main job runs offline."""

from ._darmanis import darmanis2015
from ._gene_sets import CONTRAST_TRAITS, PSYCHIATRIC_TRAITS, TRAIT_ALIASES, gwas_gene_sets
from ._sumstats import ad_gwas_subset

__all__ = [
    "ad_gwas_subset",
    "darmanis2015",
    "gwas_gene_sets",
    "PSYCHIATRIC_TRAITS",
    "CONTRAST_TRAITS",
    "TRAIT_ALIASES",
]
