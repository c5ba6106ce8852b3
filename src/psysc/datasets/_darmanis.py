from __future__ import annotations

from importlib.resources import files

import anndata as ad


def darmanis2015() -> ad.AnnData:
    """Human brain single-cell RNA-seq of Darmanis et al. 2015 (466 cells, raw counts).

    Smart-seq (Fluidigm C1) read counts of 466 cells from adult and fetal human cortex (430) and hippocampus (36)
    (GEO GSE67835), with the published cell-type labels.

    Returns
    -------
    anndata.AnnData
        The 466 cells, with

        - ``X``: raw read counts (CSR, float32), cells x 22,085 genes;
        - ``var_names``: gene symbols; ``var["gene_ids"]``: GENCODE v48 Ensembl ID where the symbol maps
          (empty otherwise); ``var["biotype"]``;
        - ``obs["cell_type"]``: neurons, astrocytes, oligodendrocytes, OPC, microglia, endothelial,
          fetal_quiescent, fetal_replicating, hybrid; also ``tissue``, ``age``, ``stage`` (adult/fetal),
          ``chip_id`` and ``sample``.

    Notes
    -----
    Darmanis S. et al. A survey of human brain transcriptome diversity at the single cell level.
    PNAS 112, 7285-7290 (2015). The HTSeq summary rows of the source table (``no_feature``,
    ``ambiguous``, ``alignment_not_unique``) are not genes and are not included.

    Examples
    --------
    >>> import psysc
    >>> adata = psysc.datasets.darmanis2015()
    >>> adata.shape
    (466, 22085)

    """
    return ad.read_h5ad(files("psysc.data").joinpath("darmanis2015.h5ad"))
