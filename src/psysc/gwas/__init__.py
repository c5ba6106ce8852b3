"""Read and write genetic evidence as psysc gene sets.

Every reader returns the gene-set contract of psysc: a ``dict[str, pandas.Series]`` mapping a
trait name to a Series indexed by gene whose values are the gene weights.

- :func:`read_gs` / :func:`write_gs`: scDRS ``.gs`` files;
- :func:`read_magma`: MAGMA gene-level results (``.genes.out``), selected as ``scdrs munge-gs`` does;
- :func:`read_gene_list`: plain gene lists or one column of a CSV/TSV table.
"""

from ._io import read_gene_list, read_gs, read_magma, write_gs

__all__ = ["read_gene_list", "read_gs", "read_magma", "write_gs"]
