"""Geneformer's rank-value tokenizer, exact to the official one.

Reference: ``geneformer/tokenizer.py`` of ctheodoris/Geneformer at Hugging Face revision
``05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28`` (``sum_ensembl_ids``, ``TranscriptomeTokenizer.tokenize_anndata``,
``rank_genes``, ``create_dataset.format_cell_features``). The algorithm, for each cell:

1. gene ids are upper-cased and mapped through ``ensembl_mapping_dict`` restricted to values that are in the
   token dictionary; counts of input genes that map to the same gene are **summed**;
2. ``value = count / n_counts * 10_000 / median[gene]`` in float64, in that order, where ``n_counts`` is the
   total count of the cell over *all* its genes (not only the vocabulary genes);
3. the non-zero vocabulary genes, in the column order of the collapsed matrix, are ranked with
   ``np.argsort(-values)`` (numpy's default, unstable sort: ties keep the order numpy gives for this exact
   input, which is why the column order matters);
4. V1 keeps the first 2,048 tokens; V2 emits ``[<cls>] + first 4,094 + [<eos>]``.

**Column order of the collapsed matrix.** When no two input genes map to the same gene, the official code
keeps the input column order. When some do, ``sum_ensembl_ids`` (h5ad path) drops unmapped columns, keeps the
genes that occur once in their input order, and appends the summed genes at the end, in the order of their
first occurrence (``Counter`` order), via ``sc.concat([data_dedup, processed_genes], axis=1)``. This
tokenizer builds exactly that order (both cases are the same rule).

**Deviations** (psysc's harmonisation step; the ranking itself stays exact):

- Ensembl IDs with a version suffix (``ENSG00000141510.17``) are stripped to the stable ID when the suffixed
  ID is not found (the official code maps them to nothing).
- Gene symbols are also accepted through ``gene_name_id_dict`` (the official V2 accepts upper-case symbols
  only as a side effect of its mapping dict; V1 accepts none). Symbols are matched case-sensitively unless
  the column looks like human symbols (mostly upper case), in which case the official upper-casing applies;
  so mouse title-case symbols (``Actb``) are *not* silently mapped to human genes.
- Duplicates are always summed. The official code decides whether to collapse from the *non*-upper-cased
  IDs, so identical repeated IDs (or IDs differing only in case) are not collapsed there and give the same
  token twice; here they are summed.
- Cells without any vocabulary gene give an empty sequence (the official code drops them); a cell whose
  ``n_counts`` is 0 gives an empty sequence (official: NaN values).
- Arithmetic is float64 throughout. The official code computes in the dtype numpy/scipy pick for the input:
  with a dense float32 matrix and float32 ``n_counts`` it would divide in float32; with a CSR matrix, recent
  scipy divides a sparse matrix by a dense array by *multiplying by the reciprocal* (last-bit differences).
  float64 true division equals the official loom path and the dense h5ad path with integer ``n_counts``.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from ..._core._blocks import as_csr
from .._base import Tokens, genes_digest, var_column
from ._dictionaries import ensembl_mapping, gene_medians, gene_name_id, token_dictionary

logger = logging.getLogger("psysc")

#: fewer vocabulary genes than this in the data are warned about (a whole transcriptome has about 15,000-20,000)
_FEW_VOCAB_GENES = 10_000

#: Ensembl gene ID of any species, optionally with a version suffix (group 1 = stable ID)
_ENSEMBL_RE = re.compile(r"^(ENS[A-Z]{0,6}\d{6,})(?:\.\d+)?$", re.IGNORECASE)
_VERSION_RE = re.compile(r"\.\d+$")
_HUMAN_ENSEMBL_PREFIXES = ("ENSG0", "ENSGR")  # human genes (ENSGR: PAR copies); ENSGALG etc. are other species
_TITLE_CASE_RE = re.compile(r"^[A-Z][a-z0-9]*[a-z][a-z0-9-]*$")  # Actb, Gapdh, Snap25, Rbfox3
_NUMERIC_RE = re.compile(r"^\d+$")

#: var columns tried by :func:`choose_gene_ids` (besides ``var_names``)
GENE_ID_COLUMNS = (
    "ensembl_id",
    "gene_ids",
    "gene_id",
    "ensembl_ids",
    "ensembl_gene_id",
    "feature_id",
    "gene_symbols",
    "gene_symbol",
    "feature_name",
    "gene_name",
    "symbol",
)

TARGET_SUM = 10_000
_RAW_COUNTS_MSG = (
    "Geneformer needs raw counts (non-negative integers: the official tokenizer normalises each cell by its "
    "total count itself); {what}. The data look normalised or log-transformed: pass layer='counts' (or the "
    "layer that holds the raw counts)."
)


def _as_names(values) -> list[str]:
    """Gene names as a list of ``str`` (missing values become ``""``)."""
    if isinstance(values, str):
        raise TypeError("pass a sequence of gene names or IDs, not a single string")
    ser = pd.Series(np.asarray(values, dtype=object))
    return ["" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v).strip() for v in ser]


def _is_human_cased(names: list[str]) -> bool:
    """True when most symbol-like names have no lower-case letter (human HGNC style)."""
    symbols = [n for n in names if n and not _ENSEMBL_RE.match(n) and any(c.isalpha() for c in n)]
    if not symbols:
        return True
    upper = sum(n == n.upper() for n in symbols)
    return upper >= 0.5 * len(symbols)


class GeneformerTokenizer:
    """Geneformer's official rank-value tokenizer (V1 = gc30M dictionaries, V2 = gc104M).

    Parameters
    ----------
    version
        ``"V1"`` (Geneformer-V1-10M, 2,048 tokens, no special tokens) or ``"V2"`` (Geneformer-V2-104M/316M,
        ``<cls>`` + 4,094 genes + ``<eos>``).

    Attributes
    ----------
    version
        ``"V1"`` or ``"V2"``.
    vocab_size
        Number of tokens (25,426 for V1, 20,275 for V2), special tokens included.
    special
        Special tokens and their ids (V1: ``<pad>``, ``<mask>``; V2 also ``<cls>``, ``<eos>``).
    max_genes
        Genes kept per cell (2,048 for V1, 4,094 for V2).
    model_input_size
        Maximum sequence length, special tokens included (2,048 / 4,096).

    Examples
    --------
    >>> import psysc
    >>> from psysc.models.geneformer import GeneformerTokenizer
    >>> adata = psysc.datasets.darmanis2015()
    >>> tk = GeneformerTokenizer("V2")
    >>> tokens = tk.tokenize(adata.X[:5], tk.harmonize(adata.var["gene_ids"]))
    >>> int(tokens.cell(0)[0]) == tk.special["<cls>"]
    True

    """

    def __init__(self, version: Literal["V1", "V2"] = "V2"):
        if version not in ("V1", "V2"):
            raise ValueError(f"version must be 'V1' or 'V2', not {version!r}")
        self.version = version
        tokens = token_dictionary(version)
        self.vocab_size = len(tokens)
        self.special = {k: v for k, v in tokens.items() if k.startswith("<")}
        self.pad_id = self.special["<pad>"]
        self.cls_id = self.special.get("<cls>")
        self.eos_id = self.special.get("<eos>")
        self.special_token = version == "V2"
        self.model_input_size = 4096 if version == "V2" else 2048
        self.max_genes = self.model_input_size - 2 if self.special_token else self.model_input_size
        if sorted(tokens.values()) != list(range(self.vocab_size)):
            raise RuntimeError("Geneformer token ids are not 0..vocab_size-1")
        genes = np.empty(self.vocab_size, dtype=object)
        for gene, tok in tokens.items():
            genes[tok] = gene
        self.genes = genes  # token id -> Ensembl ID (or special token)
        medians = gene_medians(version)
        self._medians = np.full(self.vocab_size, np.nan)
        for gene, tok in tokens.items():
            if gene not in self.special:
                self._medians[tok] = medians[gene]  # KeyError would mean a broken dictionary
        self.n_vocab_genes = self.vocab_size - len(self.special)
        #: collapse plan of the last gene_token_ids (row blocks of one dataset reuse it)
        self._plan_cache: tuple[bytes, tuple] | None = None
        self._adata_cache: dict = {}

    def __repr__(self) -> str:
        return f"GeneformerTokenizer({self.version!r}: {self.vocab_size:,} tokens, {self.max_genes:,} genes/cell)"

    # ------------------------------------------------------------------ harmonisation
    @cached_property
    def _key_to_token(self) -> dict[str, int]:
        """Official mapping dict restricted to values in the token dictionary, composed with it."""
        tokens = token_dictionary(self.version)
        return {k: tokens[v] for k, v in ensembl_mapping(self.version).items() if v in tokens}

    @cached_property
    def _symbol_to_token(self) -> dict[str, int]:
        key_to_token = self._key_to_token
        return {s: key_to_token[e] for s, e in gene_name_id(self.version).items() if e in key_to_token}

    @cached_property
    def _symbol_upper_to_token(self) -> dict[str, int]:
        """Case-insensitive symbol index, keeping only symbols that are unambiguous once upper-cased."""
        out: dict[str, int] = {}
        ambiguous = set()
        for s, t in self._symbol_to_token.items():
            u = s.upper()
            if out.get(u, t) != t:
                ambiguous.add(u)
            out[u] = t
        for u in ambiguous:
            del out[u]
        return out

    def harmonize(self, var_names_or_ids) -> np.ndarray:
        """Token id of each input gene, or -1 when it is not in the vocabulary.

        Ensembl IDs (any case, with or without a version suffix) follow the official rule: upper-cased and
        mapped through ``ensembl_mapping_dict`` restricted to genes of the token dictionary (V2's mapping
        dict also maps upper-case symbols and aliases to their canonical gene). psysc extensions: version
        suffixes ``.N`` are stripped when the suffixed ID is unknown, and gene symbols are accepted through
        ``gene_name_id_dict``. Symbols are matched case-sensitively unless most of them are upper case (human
        style); mouse title-case symbols are therefore not mapped (see :meth:`overlap_report`).

        Parameters
        ----------
        var_names_or_ids
            Gene names or IDs, one per column of the count matrix (``adata.var_names`` or a var column).

        Returns
        -------
        numpy.ndarray
            ``int64`` array of token ids, -1 where the gene is not in the vocabulary. Several inputs may map to
            the same token: :meth:`tokenize` sums their counts, as the official ``sum_ensembl_ids`` does.

        Examples
        --------
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> tk = GeneformerTokenizer("V1")
        >>> tk.harmonize(["ENSG00000141510", "ensg00000141510.17", "TP53", "not_a_gene"]).tolist()
        [8088, 8088, 8088, -1]

        """
        names = _as_names(var_names_or_ids)
        key_to_token = self._key_to_token
        symbols = self._symbol_to_token
        human = _is_human_cased(names)
        symbols_upper = self._symbol_upper_to_token if human else {}
        out = np.full(len(names), -1, dtype=np.int64)
        for i, name in enumerate(names):
            if not name:
                continue
            if _ENSEMBL_RE.match(name):
                key = name.upper()
                tok = key_to_token.get(key)
                if tok is None:
                    tok = key_to_token.get(_VERSION_RE.sub("", key))
            elif human:
                key = name.upper()
                tok = key_to_token.get(key)
                if tok is None:
                    tok = symbols.get(name)
                if tok is None:
                    tok = symbols_upper.get(key)
            else:
                tok = key_to_token.get(name)
                if tok is None:
                    tok = symbols.get(name)
            if tok is not None:
                out[i] = tok
        return out

    # ------------------------------------------------------------------ overlap
    #: :meth:`overlap_report` refuses inputs of which a smaller fraction is in the vocabulary
    min_input_fraction = 0.2
    #: :meth:`overlap_report` refuses inputs with fewer distinct vocabulary genes
    min_vocab_genes = 1000

    def overlap_report(self, gene_token_ids, *, names=None, check: bool = True) -> dict:
        """How well the input genes cover the model's vocabulary.

        Parameters
        ----------
        gene_token_ids
            Output of :meth:`harmonize`.
        names
            The gene names/IDs that were harmonised; used to explain a low overlap.
        check
            Raise ``ValueError`` when fewer than 20% of the input genes are matched or fewer than 1,000
            vocabulary genes are found (:attr:`min_input_fraction`, :attr:`min_vocab_genes`).

        Returns
        -------
        dict
            dict with ``n_input_genes``, ``n_input_matched``, ``frac_input_matched``, ``n_vocab_genes``,
            ``n_vocab_found``, ``frac_vocab_found`` and ``n_merged`` (input genes summed into a gene that
            another input column also maps to).

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> adata = psysc.datasets.darmanis2015()
        >>> tk = GeneformerTokenizer("V1")
        >>> rep = tk.overlap_report(tk.harmonize(adata.var["gene_ids"]))
        >>> rep["n_vocab_found"] > 15000
        True

        """
        ids = np.asarray(gene_token_ids, dtype=np.int64)
        matched = ids[ids >= 0]
        n_found = len(np.unique(matched))
        rep = {
            "version": self.version,
            "n_input_genes": len(ids),
            "n_input_matched": len(matched),
            "frac_input_matched": len(matched) / len(ids) if len(ids) else 0.0,
            "n_vocab_genes": self.n_vocab_genes,
            "n_vocab_found": n_found,
            "frac_vocab_found": n_found / self.n_vocab_genes,
            "n_merged": len(matched) - n_found,
        }
        if check and (rep["frac_input_matched"] < self.min_input_fraction or n_found < self.min_vocab_genes):
            raise ValueError(self._low_overlap_message(rep, names))
        return rep

    def _low_overlap_message(self, rep: dict, names) -> str:
        msg = (
            f"Only {rep['n_input_matched']:,} of {rep['n_input_genes']:,} input genes "
            f"({rep['frac_input_matched']:.1%}) map to Geneformer {self.version}'s vocabulary "
            f"({rep['n_vocab_found']:,} of {rep['n_vocab_genes']:,} genes found). "
        )
        causes = []
        other_species = False  # mouse genes: no var column would do, only their human orthologs
        if names is not None:
            names = [n for n in _as_names(names) if n]
            n = max(len(names), 1)
            ens = [x for x in names if _ENSEMBL_RE.match(x)]
            other_ids = [x for x in ens if not x.upper().startswith(_HUMAN_ENSEMBL_PREFIXES)]
            title = [x for x in names if _TITLE_CASE_RE.match(x)]
            numeric = [x for x in names if _NUMERIC_RE.match(x)]
            other_species = len(other_ids) > 0.2 * n or len(title) > 0.5 * n
            if len(other_ids) > 0.2 * n:
                causes.append(
                    f"the Ensembl IDs are of another species (e.g. {other_ids[0]!r}; ENSMUSG = mouse): "
                    "Geneformer is a human model"
                )
            if len(title) > 0.5 * n:
                causes.append(
                    f"the gene symbols are title case (e.g. {title[0]!r}), as for mouse or rat: these look like "
                    "genes of another species. Geneformer is a human model"
                )
            if len(numeric) > 0.2 * n:
                causes.append(f"the IDs are not Ensembl IDs (e.g. {numeric[0]!r}, Entrez-like numbers)")
        if not causes:
            causes.append(
                "the genes are not human Ensembl IDs or human symbols: symbols or IDs of another species "
                "(e.g. mouse title-case symbols), non-Ensembl IDs (Entrez, RefSeq), unusual version suffixes, "
                "or a subset of genes (Geneformer needs all genes, no feature selection)"
            )
        if other_species:
            return (msg + "Likely cause: " + "; ".join(causes) + ". Fix: rename the genes to their human orthologs "
                    "(human Ensembl IDs), one to one, first: psysc.pp.map_genes(adata, 'human', gene_id='ensembl').")
        return (
            msg
            + "Likely cause: "
            + "; ".join(causes)
            + ". Fix: read the var column that holds human Ensembl IDs (model = psysc.models.load(...); "
            "model.gene_col = 'gene_ids'; psysc.tl.embed(adata, model)), or convert the genes to human Ensembl IDs "
            "before embedding."
        )

    # ------------------------------------------------------------------ tokenisation
    def _plan(self, gene_token_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input column -> collapsed column or -1, token of each collapsed column, its median)."""
        ids = np.asarray(gene_token_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError("gene_token_ids must be a 1-D integer array (output of harmonize)")
        ids = ids.astype(np.int64, copy=False)
        key = ids.tobytes()
        if self._plan_cache is not None and self._plan_cache[0] == key:
            return self._plan_cache[1]
        if ids.size and (ids.max() >= self.vocab_size or ids.min() < -1):
            raise ValueError(f"gene_token_ids must be -1 or a token id below {self.vocab_size}")
        specials = np.fromiter(self.special.values(), dtype=np.int64)
        if np.isin(ids, specials).any():
            raise ValueError("gene_token_ids contain special tokens; use harmonize() to map genes")
        valid = np.flatnonzero(ids >= 0)
        tok = ids[valid]
        uniq, first, counts = np.unique(tok, return_index=True, return_counts=True)
        first_col = valid[first]  # input column of the first occurrence
        once = counts == 1
        # official column order: genes seen once in input order, then summed genes by first occurrence
        col_tokens = np.concatenate(
            [
                uniq[once][np.argsort(first_col[once], kind="stable")],
                uniq[~once][np.argsort(first_col[~once], kind="stable")],
            ]
        )
        col_of_token = np.full(self.vocab_size, -1, dtype=np.int64)
        col_of_token[col_tokens] = np.arange(len(col_tokens))
        col_map = np.full(len(ids), -1, dtype=np.int64)
        col_map[valid] = col_of_token[tok]
        plan = (col_map, col_tokens, self._medians[col_tokens])
        self._plan_cache = (key, plan)
        return plan

    @staticmethod
    def _check_counts(data: np.ndarray) -> None:
        if data.dtype.kind in "iu":
            if data.dtype.kind == "i" and data.size and data.min() < 0:
                raise ValueError(_RAW_COUNTS_MSG.format(what="found negative values"))
            return
        if data.dtype.kind != "f":
            raise TypeError(f"counts must be numeric, not {data.dtype}")
        if not np.isfinite(data).all():
            raise ValueError(_RAW_COUNTS_MSG.format(what="found NaN or infinite values"))
        if data.size and data.min() < 0:
            raise ValueError(_RAW_COUNTS_MSG.format(what="found negative values"))
        if (np.modf(data)[0] != 0).any():
            raise ValueError(_RAW_COUNTS_MSG.format(what="found non-integer values"))

    def tokenize(self, X, gene_token_ids, *, n_counts=None) -> Tokens:
        """Token sequences of a block of cells.

        Parameters
        ----------
        X
            Raw counts, cells x genes (CSR/CSC sparse matrix or dense array), all genes of the cells.
        gene_token_ids
            Token id of each column of ``X`` (:meth:`harmonize`), -1 for genes outside the vocabulary.
            Columns mapping to the same token are summed.
        n_counts
            Total count of each cell (the official ``obs["n_counts"]``). Default: the row sums of ``X`` over
            all its columns, vocabulary or not, as the official tokenizer requires.

        Returns
        -------
        psysc.models.Tokens
            :class:`~psysc.models._base.Tokens` of ``X.shape[0]`` cells, in row order. V1: at most 2,048 gene
            tokens; V2: ``<cls>``, at most 4,094 gene tokens, ``<eos>``. A cell without any expressed vocabulary
            gene has an empty sequence.

        Examples
        --------
        >>> import numpy as np
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> tk = GeneformerTokenizer("V1")
        >>> ids = tk.harmonize(["ENSG00000141510", "ENSG00000075624", "ENSG00000111640"])  # TP53, ACTB, GAPDH
        >>> X = np.array([[1, 5, 0], [0, 0, 0]])
        >>> t = tk.tokenize(X, ids)
        >>> [tk.genes[i] for i in t.cell(0)], t.lengths.tolist()  # ranked by count / median, not by count
        (['ENSG00000141510', 'ENSG00000075624'], [2, 0])

        """
        X = as_csr(X)
        n_cells, n_genes = X.shape
        col_map, col_tokens, col_medians = self._plan(gene_token_ids)
        if len(col_map) != n_genes:
            raise ValueError(f"gene_token_ids has {len(col_map)} entries but X has {n_genes} columns")
        self._check_counts(X.data)
        data = X.data.astype(np.float64)
        row_of = np.repeat(np.arange(n_cells), np.diff(X.indptr))
        if n_counts is None:
            n_counts = np.bincount(row_of, weights=data, minlength=n_cells)  # all genes of the row
        else:
            n_counts = np.asarray(n_counts, dtype=np.float64).ravel()
            if n_counts.shape != (n_cells,):
                raise ValueError(f"n_counts must have one value per cell ({n_cells}), got shape {n_counts.shape}")
            if not (np.isfinite(n_counts).all() and (n_counts >= 0).all()):
                raise ValueError("n_counts must be finite and non-negative")
        # collapse: keep vocabulary genes, sum the columns of a same gene (exact for integer counts);
        # a cell with n_counts == 0 has nothing to rank (the official code would produce NaN)
        new_col = col_map[X.indices]
        keep = (new_col >= 0) & (data != 0) & (n_counts > 0)[row_of]
        rows, cols, counts = row_of[keep], new_col[keep], data[keep]
        key = rows * max(len(col_tokens), 1) + cols  # position in the collapsed (cells x genes) matrix
        if key.size > 1 and not (key[1:] > key[:-1]).all():
            # Order each row by collapsed column. Only summed genes (appended at the end) and unsorted input
            # indices are out of place, so the stable sort (timsort on int64) is close to linear here.
            order = np.argsort(key, kind="stable")
            key, rows, cols, counts = key[order], rows[order], cols[order], counts[order]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            if len(starts) < len(key):  # sum the columns of a same gene
                counts = np.add.reduceat(counts, starts)
                rows, cols = rows[starts], cols[starts]
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_cells), out=indptr[1:])
        # official order of operations: X / n_counts * target_sum / median
        values = counts / n_counts[rows] * TARGET_SUM / col_medians[cols]
        return self._rank(values, col_tokens[cols], indptr)

    def _rank(self, values: np.ndarray, tokens: np.ndarray, indptr: np.ndarray) -> Tokens:
        """Rank the non-zero genes of each cell (``np.argsort(-x)``), truncate, add special tokens."""
        n_cells = len(indptr) - 1
        nnz = np.diff(indptr)
        kept = np.minimum(nnz, self.max_genes)
        extra = 2 if self.special_token else 0
        lengths = np.where(nnz > 0, kept + extra, 0)
        offsets = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.empty(offsets[-1], dtype=np.int64)
        for i in np.flatnonzero(nnz):
            s, e = indptr[i], indptr[i + 1]
            order = np.argsort(-values[s:e])[: kept[i]]  # default kind, as the official rank_genes
            o = offsets[i]
            if extra:
                ids[o] = self.cls_id
                ids[o + 1 : o + 1 + kept[i]] = tokens[s:e][order]
                ids[o + 1 + kept[i]] = self.eos_id
            else:
                ids[o : o + kept[i]] = tokens[s:e][order]
        return Tokens(ids=ids, offsets=offsets)

    # ------------------------------------------------------------------ AnnData convenience
    def choose_gene_ids(self, adata, *, check: bool = True):
        """The gene identifiers of ``adata`` to harmonise: ``var_names`` or the best ``var`` column.

        Same choice as the module function :func:`choose_gene_ids`, but returns the identifiers themselves
        (pass them to :meth:`harmonize`) and, with ``check=True``, raises ``ValueError`` on a too low
        vocabulary overlap (:meth:`overlap_report`, which names the likely cause, e.g. mouse genes).

        Parameters
        ----------
        adata
            AnnData whose genes are to be matched.
        check
            Raise on a too low overlap.

        Returns
        -------
        pandas.Index
            ``adata.var_names`` or the chosen ``adata.var`` column.

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> adata = psysc.datasets.darmanis2015()  # Ensembl IDs in var["gene_ids"], preferred to the symbols
        >>> tk = GeneformerTokenizer("V2")
        >>> ids = tk.harmonize(tk.choose_gene_ids(adata))
        >>> int((ids >= 0).sum())
        16621

        """
        key, ids = choose_gene_ids(adata, self)
        names = adata.var_names if key is None else adata.var[key]
        self.overlap_report(ids, names=names, check=check)
        return names

    def gene_token_ids(self, adata, gene_ids: str | None = "auto", *, check: bool = True) -> np.ndarray:
        """Harmonised token ids of ``adata``'s genes, checked for overlap (cached per gene list).

        Parameters
        ----------
        adata
            AnnData (in memory or backed).
        gene_ids
            ``"auto"`` (:func:`choose_gene_ids`), ``None`` for ``var_names``, or a ``var`` column.
        check
            Raise on a too low vocabulary overlap (:meth:`overlap_report`).

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> adata = psysc.datasets.darmanis2015()
        >>> GeneformerTokenizer("V2").gene_token_ids(adata, "gene_ids").shape
        (22085,)

        """
        return self._chosen_genes(adata, gene_ids, check)[1]

    def gene_source(self, adata, gene_ids: str | None = "auto", *, check: bool = True) -> str:
        """Where :meth:`gene_token_ids` reads the genes from: ``"var_names"`` or ``"var['<column>']"`` (cached)."""
        key = self._chosen_genes(adata, gene_ids, check)[0]
        return "var_names" if key is None else f"var[{key!r}]"

    def _chosen_genes(self, adata, gene_ids, check: bool) -> tuple[str | None, np.ndarray]:
        """``(column or None for var_names, harmonised token ids)``, checked and logged once per gene list."""
        cache_key = (gene_ids, genes_digest(adata), check)
        if cache_key in self._adata_cache:
            return self._adata_cache[cache_key]
        if gene_ids == "auto":
            key, ids = choose_gene_ids(adata, self)
        else:
            key = gene_ids
            ids = self.harmonize(adata.var_names if key is None else var_column(adata, key))
        names = adata.var_names if key is None else adata.var[key]
        rep = self.overlap_report(ids, names=names, check=check)
        logger.info(
            "Geneformer %s: %s genes of %s matched (%s of %s vocabulary genes) using %s",
            self.version,
            f"{rep['n_input_matched']:,}",
            f"{rep['n_input_genes']:,}",
            f"{rep['n_vocab_found']:,}",
            f"{rep['n_vocab_genes']:,}",
            "var_names" if key is None else f"var[{key!r}]",
        )
        if rep["n_vocab_found"] < _FEW_VOCAB_GENES:
            logger.warning(
                "Geneformer %s: only %s of its %s vocabulary genes are in the data: is it feature-selected (highly "
                "variable genes)? Geneformer ranks every gene a cell expresses, so a subset of the genes changes "
                "the ranks and the embedding; embed all genes (e.g. adata.raw.to_adata(), or the data before "
                "sc.pp.highly_variable_genes(subset=True))",
                self.version, f"{rep['n_vocab_found']:,}", f"{rep['n_vocab_genes']:,}",
            )
        if len(self._adata_cache) > 8:
            self._adata_cache.clear()
        self._adata_cache[cache_key] = (key, ids)
        return key, ids

    def tokenize_adata(
        self,
        adata,
        *,
        rows: slice | None = None,
        layer: str | None = None,
        gene_ids: str | None = "auto",
        n_counts_key: str | None = None,
    ) -> Tokens:
        """Tokenize the cells of ``adata`` (or the row slice ``rows``) from raw counts.

        Parameters
        ----------
        adata
            AnnData with raw counts (in memory or backed).
        rows
            Row slice to tokenize (default: all cells).
        layer
            Layer with the raw counts (default ``adata.X``).
        gene_ids
            See :meth:`gene_token_ids`.
        n_counts_key
            ``obs`` column with each cell's total count (default: row sums of the counts, all genes).

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.geneformer import GeneformerTokenizer
        >>> adata = psysc.datasets.darmanis2015()
        >>> tokens = GeneformerTokenizer("V1").tokenize_adata(adata, rows=slice(0, 10))
        >>> tokens.n_cells, int(tokens.lengths.max())
        (10, 2048)

        """
        ids = self.gene_token_ids(adata, gene_ids)
        rows = slice(None) if rows is None else rows
        M = adata.X if layer is None else adata.layers[layer]
        X = M[rows]
        n_counts = None if n_counts_key is None else adata.obs[n_counts_key].to_numpy()[rows]
        return self.tokenize(X, ids, n_counts=n_counts)


def choose_gene_ids(adata, tokenizer: GeneformerTokenizer | str = "V2", *, candidates=GENE_ID_COLUMNS):
    """Pick ``var_names`` or the ``var`` column to read the genes from: human Ensembl IDs when they match.

    The official tokenizer reads human Ensembl IDs (``var["ensembl_id"]``); symbols map to a slightly different
    set of genes (a symbol may name another gene than the ID's, and V1's dictionary knows IDs only). So a
    source of human Ensembl IDs whose overlap with the vocabulary passes :meth:`GeneformerTokenizer.overlap_report`
    is preferred, ``var["ensembl_id"]`` first; only without one is the source chosen that covers most of the
    vocabulary.

    Parameters
    ----------
    adata
        AnnData whose genes are to be matched.
    tokenizer
        A :class:`GeneformerTokenizer` or its version (``"V1"``, ``"V2"``).
    candidates
        ``var`` columns to try besides ``var_names`` (those present and holding strings).

    Returns
    -------
    tuple[str or None, numpy.ndarray]
        ``(key, gene_token_ids)``: ``key`` is ``None`` for ``var_names`` or the column name; ``gene_token_ids``
        is :meth:`GeneformerTokenizer.harmonize` of it. Among the sources of the same kind (Ensembl IDs or not), the
        winner has the most distinct vocabulary genes (ties: the earlier candidate, ``var`` columns before
        ``var_names``).

    Examples
    --------
    >>> import psysc
    >>> from psysc.models.geneformer import choose_gene_ids
    >>> adata = psysc.datasets.darmanis2015()  # symbols as var_names, Ensembl IDs in var["gene_ids"]
    >>> key, ids = choose_gene_ids(adata, "V1")
    >>> print(key)
    gene_ids

    """
    tk = tokenizer if isinstance(tokenizer, GeneformerTokenizer) else GeneformerTokenizer(tokenizer)
    keys: list[str | None] = []
    for col in candidates:
        if col in adata.var.columns:
            s = adata.var[col]
            if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype):
                keys.append(col)
    keys.append(None)
    best = None
    for key in keys:
        names = adata.var_names if key is None else adata.var[key]
        ids = tk.harmonize(names)
        rep = tk.overlap_report(ids, check=False)
        passes = rep["frac_input_matched"] >= tk.min_input_fraction and rep["n_vocab_found"] >= tk.min_vocab_genes
        ensembl = passes and _mostly_human_ensembl(names)
        # the official tokenizer reads var["ensembl_id"]: first among the passing Ensembl sources
        score = (ensembl, ensembl and key == "ensembl_id", rep["n_vocab_found"], rep["n_input_matched"])
        if best is None or score > best[0]:
            best = (score, key, ids)
    return best[1], best[2]


def _mostly_human_ensembl(names) -> bool:
    """Whether most non-empty identifiers are human Ensembl gene IDs (``ENSG...``)."""
    names = [n for n in _as_names(names) if n]
    n_human = sum(1 for x in names if _ENSEMBL_RE.match(x) and x.upper().startswith(_HUMAN_ENSEMBL_PREFIXES))
    return bool(names) and n_human > 0.5 * len(names)
