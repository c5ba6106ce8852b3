"""A small real GWAS summary-statistics file and the gene windows MAGMA used for it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def ad_gwas_subset() -> dict[str, object]:
    """Alzheimer's disease GWAS summary statistics (a 417-SNP subset) and MAGMA's gene windows for it.

    The example input of :func:`psysc.gwas.read_sumstats` and :func:`psysc.gwas.sumstats_to_genes`:

    - ``"sumstats"``: the IEU OpenGWAS study ieu-a-298 (Lambert et al., Nat Genet 2013; 74,046
      individuals), the subset shipped with the Bioconductor package MungeSumstats
      (``inst/extdata/ieu-a-298.tsv.gz``): 417 rows on chromosomes 1 and 22, positions on GRCh37,
      columns ``SNP CHR BP A1 A2 INFO BETA SE LP N ID P``. It includes a real broken line (a SNP
      without its P-value and a truncated row), which ``read_sumstats`` repairs or drops and counts.
    - ``"gene_loc"``: the gene windows of MAGMA's own gene analysis of the same GWAS
      (MAGMA_Celltyping, ``ieu-a-298.genes.out``): 1,355 genes, NCBI 37.3 (GRCh37) coordinates that
      already include a 35 kb upstream / 10 kb downstream window, in MAGMA ``gene.loc`` layout with
      the HGNC symbol as NAME. Use it with ``window=0``.
    - ``"build"``: ``"GRCh37"``.
    - ``"columns"``: ``{"A1": "A2", "A2": "A1"}``, for ``read_sumstats(..., columns=)``. MungeSumstats writes the
      reference (non-effect) allele as ``A1`` and the effect allele, to which ``BETA`` refers, as ``A2``;
      psysc's ``A1`` is the effect allele.

    The subset covers two chromosomes only (no APOE region): it shows the workflow, not the genetics
    of Alzheimer's disease. Sources, checksums and licences: ``psysc/data/README.md``.

    Returns
    -------
    dict
        ``{"sumstats": Path, "gene_loc": Path, "build": "GRCh37", "columns": dict}``.

    Examples
    --------
    >>> import psysc
    >>> ex = psysc.datasets.ad_gwas_subset()
    >>> ss = psysc.gwas.read_sumstats(ex["sumstats"], trait="AD", columns=ex["columns"])
    >>> genes = psysc.gwas.sumstats_to_genes(ss, build=ex["build"], gene_loc=ex["gene_loc"], window=0)
    >>> genes.index[0], int(genes["NSNPS"].iloc[0])
    ('SPRR2G', 6)

    """
    root = files("psysc.data")
    return {
        "sumstats": Path(str(root.joinpath("ad_gwas_subset.tsv.gz"))),
        "gene_loc": Path(str(root.joinpath("ad_gwas_subset.genes.loc"))),
        "build": "GRCh37",
        "columns": {"A1": "A2", "A2": "A1"},  # MungeSumstats: A2 is the effect allele
    }
