"""Genetic evidence as psysc gene sets: readers, gene identifiers, species and bundled panels.

Every reader returns the gene-set contract of psysc: a ``dict[str, pandas.Series]`` mapping a
trait name to a Series indexed by gene whose values are the gene weights.

- :func:`read_gs` / :func:`write_gs`: scDRS ``.gs`` files; :func:`read_gmt`: GMT files (MSigDB, Enrichr);
- :func:`read_magma`: MAGMA gene-level results (``.genes.out``; ``.genes.raw`` with the gene-gene
  correlations), selected as ``scdrs munge-gs`` does;
- :func:`read_gene_stats`: gene x trait tables of z-scores or P-values (``scdrs munge-gs``'s input);
- :func:`read_gene_list`: plain gene lists or one column of a CSV/TSV table;
- :func:`read_sumstats`, :func:`sumstats_to_genes`, :func:`genes_to_gene_set`: GWAS summary
  statistics to gene-level z-scores;
- :func:`to_ensembl`, :func:`to_symbols`, :func:`current_symbols`, :func:`to_species`,
  :func:`guess_species`: identifiers and human <-> mouse orthologs;
- :func:`panel`, :func:`panels`: bundled gene sets (GWAS MAGMA sets, rare-variant gene lists);
- :func:`gene_table`: the bundled GENCODE gene tables.
"""

from ._genes import gene_table
from ._ids import current_symbols, guess_species, to_ensembl, to_species, to_symbols
from ._io import read_gene_list, read_gene_stats, read_gmt, read_gs, read_magma, write_gs
from ._panels import panel, panels
from ._sumstats import genes_to_gene_set, read_sumstats, sumstats_to_genes

__all__ = [
    "current_symbols",
    "gene_table",
    "genes_to_gene_set",
    "guess_species",
    "panel",
    "panels",
    "read_gene_list",
    "read_gene_stats",
    "read_gmt",
    "read_gs",
    "read_magma",
    "read_sumstats",
    "sumstats_to_genes",
    "to_ensembl",
    "to_species",
    "to_symbols",
    "write_gs",
]
