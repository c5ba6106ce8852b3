"""The official Geneformer dictionaries, from the plain files shipped in ``data/``.

The files were converted once from the official pickles (ctheodoris/Geneformer, Apache-2.0) by
``scripts/convert_geneformer_dictionaries.py``; see ``data/README.md``. At run time only these gzip'd TSV
files are read (never a pickle), each checked against the sha256 recorded in ``data/SOURCES.json``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import lru_cache
from importlib.resources import files

#: model version -> Genecorpus suffix of the official dictionary files
CORPORA = {"V1": "gc30M", "V2": "gc104M"}


def _data_file(name: str):
    return files("psysc.models.geneformer").joinpath("data").joinpath(name)


@lru_cache(maxsize=1)
def sources() -> dict:
    """Provenance of the shipped files (content of ``data/SOURCES.json``)."""
    return json.loads(_data_file("SOURCES.json").read_text(encoding="utf-8"))


def _corpus(version: str) -> str:
    if version not in CORPORA:
        raise ValueError(f"unknown Geneformer version {version!r}; expected one of {sorted(CORPORA)}")
    return CORPORA[version]


def _read(stem: str, version: str) -> tuple[tuple[str, str], ...]:
    name = f"{stem}_{_corpus(version)}.tsv.gz"
    meta = sources()["files"][name]
    blob = _data_file(name).read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise RuntimeError(f"psysc's Geneformer dictionary {name} is corrupt (sha256 mismatch); reinstall psysc")
    lines = gzip.decompress(blob).decode("utf-8").splitlines()[1:]  # drop the header
    rows = tuple(tuple(line.split("\t")) for line in lines)
    if len(rows) != meta["n_entries"] or any(len(r) != 2 for r in rows):
        raise RuntimeError(f"psysc's Geneformer dictionary {name} is malformed; reinstall psysc")
    return rows


@lru_cache(maxsize=4)
def token_dictionary(version: str) -> dict[str, int]:
    """``{Ensembl ID or special token: token id}`` (official ``token_dictionary_gc*.pkl``).

    Examples
    --------
    >>> from psysc.models.geneformer._dictionaries import token_dictionary
    >>> token_dictionary("V2")["<cls>"]
    2

    """
    return {k: int(v) for k, v in _read("token_dictionary", version)}


@lru_cache(maxsize=4)
def gene_medians(version: str) -> dict[str, float]:
    """``{Ensembl ID: non-zero median}`` (official ``gene_median_dictionary_gc*.pkl``), exact float64.

    Examples
    --------
    >>> from psysc.models.geneformer._dictionaries import gene_medians
    >>> len(gene_medians("V1"))
    25424

    """
    return {k: float(v) for k, v in _read("gene_median_dictionary", version)}


@lru_cache(maxsize=4)
def gene_name_id(version: str) -> dict[str, str]:
    """``{gene symbol: Ensembl ID}`` (official ``gene_name_id_dict_gc*.pkl``).

    Examples
    --------
    >>> from psysc.models.geneformer._dictionaries import gene_name_id
    >>> len(gene_name_id("V2"))
    63675

    """
    return dict(_read("gene_name_id_dict", version))


@lru_cache(maxsize=4)
def ensembl_mapping(version: str) -> dict[str, str]:
    """``{Ensembl ID (or, for V2, upper-case symbol / alias): canonical Ensembl ID}``.

    Official ``ensembl_mapping_dict_gc*.pkl``, unrestricted (the tokenizer restricts it to values in the token
    dictionary, as the official ``TranscriptomeTokenizer.__init__`` does).

    Examples
    --------
    >>> from psysc.models.geneformer._dictionaries import ensembl_mapping
    >>> len(ensembl_mapping("V2"))
    173697

    """
    return dict(_read("ensembl_mapping_dict", version))
