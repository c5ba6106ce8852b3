"""Bundled panels of psychiatric risk genes: GWAS gene sets and curated rare-variant gene lists."""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.resources import as_file, files

import numpy as np
import pandas as pd

logger = logging.getLogger("psysc")

_LISTS_FILE = "risk_gene_lists.tsv.gz"

#: Short trait names of the ``"psychiatric"`` panel (aliases of ``psysc.datasets.TRAIT_ALIASES``).
PSYCHIATRIC_PANEL = ("SCZ", "BIP", "MDD", "ADHD", "ASD", "AD", "HEIGHT")

_PANELS = {
    "psychiatric": (
        "MAGMA top-1,000 GWAS genes (z-score weights) of SCZ, BIP, MDD, ADHD and ASD, "
        "with AD and HEIGHT as contrasts (scDRS gene sets)"
    ),
    "rare_variants": (
        "exome-sequencing risk genes: SCHEMA schizophrenia (10 exome-wide, 32 at FDR < 5 %), "
        "Satterstrom 2020 ASD (102), Fu 2022 ASD (185), NDD (664) and DD (477), SFARI Gene score 1 (207)"
    ),
    "scz_psychencode": "PsychENCODE high-confidence schizophrenia GWAS genes (321; Wang et al. 2018)",
}


def panels() -> dict[str, str]:
    """The bundled gene panels: ``{name: description}``, for :func:`~psysc.gwas.panel`.

    Examples
    --------
    >>> import psysc
    >>> list(psysc.gwas.panels())
    ['psychiatric', 'rare_variants', 'scz_psychencode']

    """
    return dict(_PANELS)


@lru_cache(maxsize=1)
def _lists() -> pd.DataFrame:
    with as_file(files("psysc.data").joinpath(_LISTS_FILE)) as path:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype={"gene_id": str, "symbol": str, "source_symbol": str},
            keep_default_na=False,
            na_values={"score": [""]},
        )
    return table


def _curated(name: str, gene_id: str) -> dict[str, pd.Series]:
    table = _lists()
    table = table[table["panel"] == name]
    column = "symbol" if gene_id == "symbol" else "gene_id"
    out = {}
    for set_name, rows in table.groupby("set", sort=False):
        genes = rows[column]
        missing = int((genes == "").sum())
        if missing:
            logger.info(
                "%s: %d of %d genes have no GENCODE v48 symbol and are left out (use gene_id='ensembl' to keep them)",
                set_name,
                missing,
                len(rows),
            )
        genes = genes[genes != ""]
        out[str(set_name)] = pd.Series(
            np.ones(len(genes)), index=pd.Index(genes.tolist(), dtype=object, name="gene"), name=str(set_name)
        )
    return out


def panel(name: str | None = None, *, gene_id: str = "symbol"):
    """A bundled panel of psychiatric risk gene sets.

    ``panel()`` without a name returns the available panels (as :func:`panels`). Every panel is a
    gene-set dict ``{set name: Series}`` indexed by gene, ready for scoring.

    Parameters
    ----------
    name
        ``"psychiatric"``, ``"rare_variants"`` or ``"scz_psychencode"``; ``None`` lists the panels.
    gene_id
        ``"symbol"`` or ``"ensembl"`` (unversioned Ensembl IDs). Symbols are GENCODE v48's for
        ``"rare_variants"`` and ``"scz_psychencode"``; ``"psychiatric"`` keeps the symbols of the scDRS MAGMA
        files (2018: e.g. ``PVRL2``, now ``NECTIN2``), as :func:`psysc.datasets.gwas_gene_sets` does. For data
        named by current symbols, ``gene_id="ensembl"`` with Ensembl IDs in the data, or
        :func:`psysc.gwas.to_symbols` on the sets, keeps the renamed genes.

    Returns
    -------
    dict[str, pandas.Series] or dict[str, str]
        The gene sets of the panel, or ``{panel name: description}`` when ``name`` is None.

    Raises
    ------
    ValueError
        If the panel or ``gene_id`` is unknown.

    Notes
    -----
    **Contents**

    ``"psychiatric"`` -- GWAS gene sets, the 1,000 genes with the smallest MAGMA gene P value,
    weighted by the MAGMA z-score (clipped at 10), from :func:`psysc.datasets.gwas_gene_sets`.
    With ``gene_id="ensembl"`` the symbols are mapped by :func:`psysc.gwas.to_ensembl`:
    2 to 17 genes of each set, mostly ``LOC`` genes, have no GENCODE v48 gene and are left out.

    =========  ==========================================================================================
    set        GWAS
    =========  ==========================================================================================
    SCZ        Pardiñas A. F. et al. Common schizophrenia alleles are enriched in mutation-intolerant
               genes and in regions under strong background selection. Nat Genet 50, 381-389 (2018).
               doi:10.1038/s41588-018-0059-2
    BIP        Mullins N. et al. Genome-wide association study of more than 40,000 bipolar disorder
               cases provides new insights into the underlying biology. Nat Genet 53, 817-829 (2021).
               doi:10.1038/s41588-021-00857-4
    MDD        Howard D. M. et al. Genome-wide meta-analysis of depression identifies 102 independent
               variants and highlights the importance of the prefrontal brain regions. Nat Neurosci 22,
               343-352 (2019). doi:10.1038/s41593-018-0326-7
    ADHD       Demontis D. et al. Discovery of the first genome-wide significant risk loci for attention
               deficit/hyperactivity disorder. Nat Genet 51, 63-75 (2019). doi:10.1038/s41588-018-0269-7
    ASD        Grove J. et al. Identification of common genetic risk variants for autism spectrum
               disorder. Nat Genet 51, 431-444 (2019). doi:10.1038/s41588-019-0344-8
    AD         (contrast, neurodegenerative) Jansen I. E. et al. Genome-wide meta-analysis identifies new
               loci and functional pathways influencing Alzheimer's disease risk. Nat Genet 51, 404-413
               (2019). doi:10.1038/s41588-018-0311-9
    HEIGHT     (contrast, non-brain) UK Biobank, Loh P.-R. et al. Mixed-model association for
               biobank-scale datasets. Nat Genet 50, 906-908 (2018). doi:10.1038/s41588-018-0144-6
    =========  ==========================================================================================

    The gene sets are those of scDRS: Zhang M. J., Hou K. et al. Polygenic enrichment distinguishes
    disease associations of individual cells in single-cell RNA-seq data. Nat Genet 54, 1572-1580
    (2022). doi:10.1038/s41588-022-01167-z

    ``"rare_variants"`` -- genes with an excess of rare damaging coding variants; every weight is 1.
    Counts are those of the bundled table (symbols / Ensembl IDs):

    ======================  ===========  ====================================================================
    set                     genes        source
    ======================  ===========  ====================================================================
    SCZ_SCHEMA_exome_wide   10           SCHEMA meta-analysis P < 2.14e-6 (exome-wide): SETD1A, CUL1, XPO7,
                                         TRIO, CACNA1G, SP4, GRIA3, GRIN2A, HERC1, RB1CC1. Singh T. et al.
                                         Rare coding variants in ten genes confer substantial risk for
                                         schizophrenia. Nature 604, 509-516 (2022).
                                         doi:10.1038/s41586-022-04556-w
    SCZ_SCHEMA_FDR5         32           SCHEMA meta-analysis Q < 0.05 (the paper's 32 genes at FDR < 5 %);
                                         same paper
    ASD_Satterstrom2020     102          the 102 TADA genes at FDR <= 0.1 (Table S5A; SUV420H1 and SRPR
                                         are now KMT5B and SRPRA). Satterstrom F. K. et al. Large-scale exome
                                         sequencing study implicates both developmental and functional
                                         changes in the neurobiology of autism. Cell 180, 568-584.e23 (2020).
                                         doi:10.1016/j.cell.2019.12.036
    ASD_Fu2022              185          ASD genes at FDR <= 0.05 (ASD185). Fu J. M. et al. Rare coding
                                         variation provides insight into the genetic architecture and
                                         phenotypic context of autism. Nat Genet 54, 1320-1331 (2022).
                                         doi:10.1038/s41588-022-01104-0
    NDD_Fu2022              662 / 664    ASD + developmental delay meta-analysis genes at FDR <= 0.05
                                         (NDD664; every ASD185 gene is one of them); same paper. Two of the
                                         664 Ensembl IDs (ENSG00000005955, ENSG00000168274) are not in
                                         GENCODE v48, so 662 symbols
    DD_Fu2022               476 / 477    developmental-delay genes at FDR <= 0.05 (DD477; 11 of them are not
                                         in NDD664); same paper. ENSG00000168274 has no v48 symbol
    ASD_SFARI_score1        207          SFARI Gene release 2021-01-13, gene score 1 (high confidence; 207
                                         of the release's 1,003 genes). The export gives SON the Ensembl ID
                                         of SOS1 (ENSG00000115904); SON's own ID, ENSG00000159140, is used.
                                         Abrahams B. S. et al. SFARI Gene 2.0: a community-driven
                                         knowledgebase for the autism spectrum disorders (ASDs). Mol Autism
                                         4, 36 (2013). doi:10.1186/2040-2392-4-36
    ======================  ===========  ====================================================================

    ``"scz_psychencode"`` -- ``SCZ_PsychENCODE``: the 321 high-confidence schizophrenia genes
    (Ensembl IDs) that PsychENCODE linked to the GWAS loci with its integrative model; 305 have a
    GENCODE v48 symbol (3 IDs are retired, 13 genes are named only by their ID). Wang D. et al. Comprehensive
    functional genomic resource and integrative model for the human brain. Science 362, eaat8464
    (2018). doi:10.1126/science.aat8464

    Symbols are GENCODE v48's for the Ensembl IDs of the sources (SCHEMA, Fu, SFARI, PsychENCODE),
    or the Ensembl ID of the published symbol (Satterstrom). The bundled table
    (``risk_gene_lists.tsv.gz``) keeps both, the source's own symbol, and -log10 P for SCHEMA. Source
    files, commits and licences: ``psysc/data/README.md``.

    Examples
    --------
    >>> import psysc
    >>> schema = psysc.gwas.panel("rare_variants")["SCZ_SCHEMA_exome_wide"]
    >>> sorted(schema.index)[:4]
    ['CACNA1G', 'CUL1', 'GRIA3', 'GRIN2A']
    >>> {k: len(v) for k, v in psysc.gwas.panel("psychiatric").items()}["SCZ"]
    1000
    >>> "ENSG00000183454" in psysc.gwas.panel("rare_variants", gene_id="ensembl")["SCZ_SCHEMA_exome_wide"]
    True

    """
    if name is None:
        return panels()
    if gene_id not in ("symbol", "ensembl"):
        raise ValueError(f"gene_id={gene_id!r} is not supported; choose 'symbol' or 'ensembl'")
    key = str(name).lower()
    if key not in _PANELS:
        raise ValueError(f"unknown panel {name!r}; available panels: {list(_PANELS)} (see psysc.gwas.panels())")
    if key == "psychiatric":
        from ..datasets import gwas_gene_sets  # psysc.datasets imports psysc.gwas: import here

        gene_sets = gwas_gene_sets(list(PSYCHIATRIC_PANEL))
        if gene_id == "ensembl":
            from ._ids import to_ensembl

            gene_sets = to_ensembl(gene_sets)
        return gene_sets
    out = _curated(key, gene_id)
    logger.info("panel %r: %s", key, ", ".join(f"{k} ({len(v)} genes)" for k, v in out.items()))
    return out
