"""scGPT's zero-shot input pipeline (``scgpt.tasks.cell_emb.embed_data``), exact and deterministic per cell.

Reference: ``bowang-lab/scGPT`` ``scgpt/tasks/cell_emb.py`` (``embed_data``, ``get_batch_cell_embeddings``),
``scgpt/data_collator.py`` (``DataCollator(do_binning=True, sampling=True, max_length=1200,
keep_first_n_tokens=1)``) and ``scgpt/preprocess.py`` (``binning``, ``_digitize(side="both")``). For each cell:

1. genes are matched to the vocabulary by their exact, **case-sensitive** symbol; genes outside it are dropped.
   There is no normalisation, no log and no HVG selection in this path;
2. the **non-zero** vocabulary genes are kept, in the column order of the matrix, with their values as float32;
3. those values are **binned** into ``n_bins - 1 = 50`` levels (``1..50``) per cell: with ``n`` values, the
   ``50`` edges are ``np.quantile(values, np.linspace(0, 1, 50))``, a value gets a level drawn uniformly between
   ``right + 1`` and ``left``, where ``left`` / ``right`` count the edges ``<=`` / ``<`` the value
   (``np.digitize`` both ways; ``ceil(u * (right - left) + left)``). Without ties the level is ``left``;
4. ``<cls>`` is put first with the value ``pad_value`` (-2 in ``args.json``; ``embed_data`` inserts
   ``model_configs["pad_value"]``, not the 0 of the fine-tuning tokenizer);
5. a cell with more than ``max_length - 1 = 1199`` genes keeps ``<cls>`` and ``1199`` genes drawn at random
   (after binning, so the levels are those of the whole cell).

**Binning in exact arithmetic.** The quantile edges of sorted values ``s_0 <= ... <= s_{n-1}`` sit at the
virtual indices ``k (n - 1) / 49``. For a value whose tie group occupies sorted positions ``a..b`` this gives,
without floating point, ``left = floor(49 b / (n - 1)) + 1`` and ``right = ceil(49 a / (n - 1))``
(``n = 1``: every edge equals the value, ``left = 50``, ``right = 0``). The levels are therefore a function of
the per-cell **ranks** of the values only. Consequences:

- on cells without ties the levels equal the official ``binning`` exactly (numpy's rounding of the virtual
  index only ever lands below an integer, which moves no level when the values are distinct; tested);
- raw counts, ``normalize_total`` counts and ``log1p`` of them give **identical tokens** (a per-cell increasing
  map keeps the ranks and the ties and maps 0 to 0): raw counts are not required, non-negative values with
  0 = not detected are. Scaled (centred) data is refused;
- with ties, the range ``right + 1 .. left`` of the random draw can be one level wider than numpy's in rare
  cases where numpy's float interpolation puts an edge a hair below a tied value (then the official range is one
  level narrower, or a single level): 155 of the 1.98 million non-zero values of the Darmanis data (0.008 %, in
  15 of 466 cells; raw or log-normalised) have such a range, here exact in the ranks.

**Determinism (deviation).** The official pipeline draws the tie-breaking numbers (``np.random.rand``) and the
gene sample (``torch.randperm``) from global random streams shared by all cells, so a cell's embedding depends
on the other cells, the batch size and the chunking (bowang-lab/scGPT#281). Here each cell has its own counter-based
stream (SplitMix64), keyed by a 64-bit hash (BLAKE2b) of the global ``seed`` and the cell's ``obs_name``: the
``i``-th non-zero gene of the cell (column order) gets the ``i``-th number of the cell's binning stream and the
``i``-th key of its sampling stream (the 1,199 smallest keys are kept). A cell's tokens therefore depend only
on its own counts, its name, the gene order and the seed: not on batch size, block size, row order or the other
cells. The draws have the official distribution; they are not the official numbers (which are not reproducible).

Other deviations: a cell without any expressed vocabulary gene gets an empty sequence (the official code fails
on it); the sampled genes stay in column order (the official order is random; the encoder has no positional
embedding, so only floating-point summation order differs).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from ..._core._blocks import as_csr
from .._base import Tokens, genes_digest, var_column

logger = logging.getLogger("psysc")

#: official checkpoints whose vocabulary and args.json psysc ships
MODELS = ("human", "brain")
#: special tokens the official ``embed_data`` appends to a vocabulary that lacks them, in this order
SPECIAL_TOKENS = ("<pad>", "<cls>", "<eoc>")
#: var columns tried for gene symbols, in order of preference (``feature_name`` is the official ``gene_col``)
SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_symbol", "gene_name", "gene_names", "symbol", "symbols")
#: var columns tried for Ensembl gene IDs (mapped to symbols with :func:`psysc.gwas.to_symbols`)
ENSEMBL_COLUMNS = ("gene_ids", "gene_id", "ensembl_id", "ensembl_ids", "ensembl_gene_id", "feature_id")
#: below this fraction of the input genes found in the vocabulary, tokenisation is refused
MIN_MATCHED_FRACTION = 0.10

_ENSEMBL_RE = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$", re.IGNORECASE)
_TITLE_CASE_RE = re.compile(r"^[A-Z][a-z0-9]*[a-z][a-z0-9-]*$")  # Actb, Gapdh, Snap25: mouse-style symbols

# SplitMix64 constants (Steele, Lea & Flood 2014)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
#: stream ids of the per-cell random numbers
STREAM_BINNING = np.uint64(0x62696E6E696E6731)  # "binning1"
STREAM_SAMPLING = np.uint64(0x73616D706C696E67)  # "sampling"


# ----------------------------------------------------------------------------------------------- shipped files
def _data_file(name: str):
    return files("psysc.models.scgpt").joinpath("data").joinpath(name)


@lru_cache(maxsize=1)
def sources() -> dict:
    """Provenance of the shipped vocabularies and args (content of ``data/SOURCES.json``)."""
    return json.loads(_data_file("SOURCES.json").read_text(encoding="utf-8"))


def _checked_bytes(name: str) -> bytes:
    meta = sources()["files"][name]
    blob = _data_file(name).read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise RuntimeError(f"psysc's scGPT file {name} is corrupt (sha256 mismatch); reinstall psysc")
    return blob


def _check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"unknown scGPT checkpoint {model!r}; psysc ships the vocabularies of {list(MODELS)}")
    return model


@lru_cache(maxsize=2)
def official_vocab(model: str = "human") -> tuple[str, ...]:
    """Tokens of an official scGPT vocabulary in id order (token ``i`` has id ``i``).

    Examples
    --------
    >>> from psysc.models.scgpt import official_vocab
    >>> v = official_vocab("brain")
    >>> len(v), v[0], v.index("<cls>")
    (60697, 'A1BG', 60695)

    """
    name = f"vocab_{_check_model(model)}.txt.gz"
    tokens = tuple(gzip.decompress(_checked_bytes(name)).decode("utf-8").splitlines())
    if len(tokens) != sources()["files"][name]["n_entries"]:
        raise RuntimeError(f"psysc's scGPT vocabulary {name} is malformed; reinstall psysc")
    return tokens


def official_args(model: str = "human") -> dict:
    """The official ``args.json`` of a checkpoint (a fresh dict).

    Examples
    --------
    >>> from psysc.models.scgpt import official_args
    >>> a = official_args("human")
    >>> a["nlayers"], a["embsize"], a["n_bins"], a["max_seq_len"], a["pad_value"]
    (12, 512, 51, 1200, -2)

    """
    return json.loads(_checked_bytes(f"args_{_check_model(model)}.json").decode("utf-8"))


def read_vocab_json(path: str | os.PathLike) -> list[str]:
    """Tokens of a ``vocab.json`` (``{token: id}``) in id order, with the missing special tokens appended.

    Like the official ``embed_data``, ``<pad>``, ``<cls>`` and ``<eoc>`` are appended (in that order) when the
    file lacks them. The ids must be exactly ``0..n-1``.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable JSON file ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} must hold a JSON object {{gene symbol: token id}}, not a {type(obj).__name__}")
    tokens: list[str | None] = [None] * len(obj)
    for tok, idx in obj.items():
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(obj) or tokens[idx] is not None:
            raise ValueError(f"{path}: token ids must be the distinct integers 0..{len(obj) - 1} ({tok!r}: {idx!r})")
        tokens[idx] = tok
    out = [t for t in tokens if t is not None]
    out += [s for s in SPECIAL_TOKENS if s not in obj]
    return out


# ----------------------------------------------------------------------------------------------- randomness
def cell_keys(obs_names, seed: int = 0) -> np.ndarray:
    """64-bit key of each cell's random streams: BLAKE2b of ``(seed, obs_name)``.

    Stable across processes, platforms and Python versions (unlike ``hash``). Two cells with the same name get
    the same streams.

    Examples
    --------
    >>> from psysc.models.scgpt import cell_keys
    >>> k = cell_keys(["AAACCTG-1", "AAACGGG-1"], seed=0)
    >>> k.dtype, bool(k[0] != k[1]), bool((cell_keys(["AAACCTG-1"], seed=0) == k[:1]).all())
    (dtype('uint64'), True, True)

    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    prefix = f"{int(seed)}\x00".encode()
    out = np.empty(len(obs_names), dtype=np.uint64)
    for i, name in enumerate(obs_names):
        h = hashlib.blake2b(prefix + str(name).encode("utf-8"), digest_size=8, person=b"psysc.scgpt")
        out[i] = int.from_bytes(h.digest(), "little")
    return out


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (a bijection of uint64)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
        return z ^ (z >> np.uint64(31))


def stream_bits(keys: np.ndarray, counters: np.ndarray, stream: np.uint64) -> np.ndarray:
    """Number ``counters[j]`` of the stream ``stream`` of the cell with key ``keys[j]`` (uint64).

    SplitMix64 run as a counter-based generator: ``mix(mix(key ^ stream) + (i + 1) * golden)``.
    """
    keys = np.asarray(keys, dtype=np.uint64)
    counters = np.asarray(counters).astype(np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(_mix64(keys ^ stream) + (counters + np.uint64(1)) * _GOLDEN)


def stream_uniform(keys: np.ndarray, counters: np.ndarray, stream: np.uint64) -> np.ndarray:
    """Uniform numbers in ``[0, 1)`` (53 bits) from :func:`stream_bits`."""
    return (stream_bits(keys, counters, stream) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


# ----------------------------------------------------------------------------------------------- binning
def _bin_levels(vals: np.ndarray, rows: np.ndarray, counts: np.ndarray, starts: np.ndarray, pos: np.ndarray,
                keys: np.ndarray | None, n_bins: int, uniforms: np.ndarray | None = None) -> np.ndarray:
    """Levels (int64) of the non-zero values ``vals`` of several cells (see the module doc for the rule).

    ``rows`` (non-decreasing) is each value's cell, ``counts`` / ``starts`` the values per cell and the first
    index of each cell, ``pos`` the index of the value inside its cell. The random numbers come from the cells'
    binning streams (``keys``), or from ``uniforms`` (one per value) when given.
    """
    n_edges = n_bins - 1  # 50 quantile edges -> levels 1..50
    # sort by (cell, value) with one uint64 key: the bit pattern of a positive float32 orders like its value
    key = (rows.astype(np.uint64) << np.uint64(32)) | np.ascontiguousarray(vals, dtype=np.float32).view(np.uint32)
    order = np.argsort(key)  # ties need no order: only the tie groups are used
    sk, sr = key[order], rows[order]
    new = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        new[1:] = sk[1:] != sk[:-1]
    gstart = np.flatnonzero(new)
    gend = np.r_[gstart[1:], len(order)] - 1
    gid = np.cumsum(new) - 1
    a = np.empty(len(order), dtype=np.int64)
    b = np.empty(len(order), dtype=np.int64)
    a[order] = gstart[gid] - starts[sr]  # first and last sorted position of the value's tie group
    b[order] = gend[gid] - starts[sr]
    den = counts[rows] - 1
    single = den == 0
    safe = np.where(single, 1, den)
    m = n_edges - 1
    left = np.where(single, n_edges, (m * b) // safe + 1)
    right = np.where(single, 0, -((-m * a) // safe))
    levels = left.copy()
    need = (left - right) >= 2  # several edges equal the value: a random level in right+1..left
    if need.any():
        if uniforms is not None:
            u = np.asarray(uniforms, dtype=np.float64)[need]
        else:
            u = stream_uniform(keys[rows[need]], pos[need], STREAM_BINNING)
        levels[need] = np.ceil(u * (right[need] - left[need]) + left[need]).astype(np.int64)
    return levels


def bin_values(values, n_bins: int = 51, *, uniforms=None, seed: int = 0, name: str = "") -> np.ndarray:
    """Levels (scGPT bins) of the non-zero values of one cell (the official ``binning`` in exact arithmetic).

    Parameters
    ----------
    values
        The cell's non-zero values (1-D, positive), in column order.
    n_bins
        ``n_bins`` of ``args.json`` (51: levels ``1..50``).
    uniforms
        One number in ``[0, 1)`` per value for breaking ties (the official code uses ``np.random.rand``). Default:
        the cell's own stream, from ``seed`` and ``name`` (as :class:`ScGPTTokenizer` does).
    seed, name
        Key of the cell's stream when ``uniforms`` is not given.

    Returns
    -------
    numpy.ndarray
        Levels (int64) of the values.

    Examples
    --------
    >>> from psysc.models.scgpt import bin_values
    >>> bin_values([3.0, 1.0, 8.0, 2.0]).tolist()  # 4 distinct values: left digit of 50 quantile edges
    [33, 1, 50, 17]

    """
    vals = np.asarray(values, dtype=np.float32).ravel()
    if vals.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not (np.isfinite(vals).all() and (vals > 0).all()):
        raise ValueError("values must be the finite, positive (non-zero) values of one cell")
    n = len(vals)
    keys = cell_keys([name], seed)
    return _bin_levels(vals, np.zeros(n, dtype=np.int64), np.array([n]), np.array([0]), np.arange(n), keys,
                       n_bins, uniforms)


# ----------------------------------------------------------------------------------------------- genes
def _looks_ensembl(names) -> bool:
    s = [str(x) for x in names if str(x)]
    return bool(s) and sum(bool(_ENSEMBL_RE.match(x)) for x in s) >= 0.5 * len(s)


def ensembl_to_symbols(names) -> np.ndarray:
    """Symbol of each Ensembl gene ID (``None`` where there is none), with :func:`psysc.gwas.to_symbols`.

    IDs are matched without their version suffix against psysc's GENCODE table. Several IDs with one symbol
    keep it once (the last one), so that no symbol appears twice. IDs of another species (``ENSMUSG``) have no
    human symbol: ``None``, without to_symbols' species warning (the vocabulary check names the fix).
    """
    from ...gwas import to_symbols

    names = np.asarray([str(x) for x in names], dtype=object)
    out = np.full(len(names), None, dtype=object)
    is_id = np.array([bool(_ENSEMBL_RE.match(x)) and x[:4].upper() == "ENSG" for x in names], dtype=bool)
    if not is_id.any():
        return out
    uniq, inverse = np.unique(names[is_id], return_inverse=True)
    mapped = to_symbols(pd.Series(np.arange(1, len(uniq) + 1, dtype=float), index=pd.Index(uniq, dtype=object)))
    sym_of_uniq = np.full(len(uniq), None, dtype=object)
    sym_of_uniq[np.asarray(mapped.to_numpy(), dtype=np.int64) - 1] = np.asarray(mapped.index, dtype=object)
    # a symbol once: the last input column of the ID that kept it
    cols = np.flatnonzero(is_id)
    got = sym_of_uniq[inverse]
    seen: set = set()
    for j in range(len(cols) - 1, -1, -1):
        if got[j] is not None:
            if got[j] in seen:
                got[j] = None
            else:
                seen.add(got[j])
    out[cols] = got
    return out


#: the code the error for mouse genes suggests: the columns renamed to their human orthologs, one to one
MOUSE_TO_HUMAN_COLUMNS = "psysc.pp.map_genes(adata, 'human')"


class ScGPTTokenizer:
    """scGPT's zero-shot tokenizer: symbols -> ids, per-cell binning, ``<cls>`` first, sampling to ``max_length``.

    Pure NumPy; see the module documentation for the exact rule and the (documented) deviations.

    Parameters
    ----------
    vocab
        ``"human"`` or ``"brain"`` (the shipped official vocabularies), the tokens in id order, a mapping
        ``{token: id}``, or the path of a ``vocab.json``.
    n_bins
        ``n_bins`` of ``args.json`` (51).
    max_length
        Longest sequence, ``<cls>`` included (``max_seq_len`` of ``args.json``: 1200).
    pad_value
        Value of ``<cls>`` (``pad_value`` of ``args.json``: -2, as ``embed_data`` inserts it).

    Examples
    --------
    >>> import numpy as np
    >>> from psysc.models.scgpt import ScGPTTokenizer, cell_keys
    >>> tk = ScGPTTokenizer("human")
    >>> ids = tk.harmonize(["GAPDH", "Actb", "SNAP25", "not-a-gene"])  # case-sensitive: Actb is not ACTB
    >>> (ids >= 0).tolist()
    [True, False, True, False]
    >>> t = tk.tokenize(np.array([[5, 9, 2, 1], [0, 0, 0, 7]]), ids, cell_keys(["c1", "c2"]))
    >>> [tk.tokens[i] for i in t.cell(0)], t.values[:3].tolist(), t.lengths.tolist()
    (['<cls>', 'GAPDH', 'SNAP25'], [-2.0, 50.0, 1.0], [3, 0])

    """

    def __init__(self, vocab="human", *, n_bins: int = 51, max_length: int = 1200, pad_value: float = -2.0):
        if isinstance(vocab, str) and vocab in MODELS:
            tokens = list(official_vocab(vocab))
            self.source = f"official {vocab} vocabulary"
        elif isinstance(vocab, str | os.PathLike):
            tokens = read_vocab_json(vocab)
            self.source = str(vocab)
        elif isinstance(vocab, Mapping):
            order = sorted(vocab.items(), key=lambda kv: kv[1])
            if [int(v) for _, v in order] != list(range(len(order))):
                raise ValueError("a vocabulary mapping must use the token ids 0..n-1")
            tokens = [str(k) for k, _ in order] + [s for s in SPECIAL_TOKENS if s not in vocab]
            self.source = "mapping"
        elif isinstance(vocab, Sequence):
            tokens = [str(t) for t in vocab]
            tokens += [s for s in SPECIAL_TOKENS if s not in set(tokens)]
            self.source = "list"
        else:
            raise TypeError(f"vocab must be 'human', 'brain', a list, a mapping or a vocab.json path, not {vocab!r}")
        self.tokens = tuple(tokens)
        self.gene_to_id = {t: i for i, t in enumerate(self.tokens)}
        if len(self.gene_to_id) != len(self.tokens):
            raise ValueError("the vocabulary holds a token twice")
        if n_bins < 3:
            raise ValueError(f"n_bins must be at least 3, not {n_bins}")
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (<cls> and one gene), not {max_length}")
        self.n_bins = int(n_bins)
        self.max_length = int(max_length)
        self.pad_value = float(pad_value)
        self.pad_id = self.gene_to_id["<pad>"]
        self.cls_id = self.gene_to_id["<cls>"]
        self._special = np.array([self.gene_to_id[s] for s in SPECIAL_TOKENS], dtype=np.int64)
        self._cache: dict = {}

    @property
    def vocab_size(self) -> int:
        """Number of tokens (genes and special tokens)."""
        return len(self.tokens)

    def is_official(self) -> str | None:
        """``"human"`` / ``"brain"`` when this vocabulary is the official mapping, else ``None``."""
        for model in MODELS:
            if self.tokens == official_vocab(model):
                return model  # both are the same mapping: "human" is returned first
        return None

    # ------------------------------------------------------------------ genes
    def harmonize(self, genes) -> np.ndarray:
        """Token id of each gene symbol (exact, case-sensitive match, as ``embed_data``), ``-1`` when absent.

        Special tokens given as genes are not matched.
        """
        get = self.gene_to_id.get
        ids = np.fromiter((get(str(g), -1) for g in genes), dtype=np.int64, count=len(genes))
        ids[np.isin(ids, self._special)] = -1
        return ids

    def _candidates(self, adata):
        """(label, gene names) of var_names and each usable var column, symbol sources first."""
        var = adata.var
        cols = [c for c in (*SYMBOL_COLUMNS, *ENSEMBL_COLUMNS) if c in var.columns]
        out = []
        for key in [*[c for c in cols if c in SYMBOL_COLUMNS], None, *[c for c in cols if c in ENSEMBL_COLUMNS]]:
            s = adata.var_names if key is None else var[key]
            if key is not None and not (s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype)):
                continue
            names = np.asarray(s.astype(str) if key is not None else s, dtype=object)
            out.append(("var_names" if key is None else f"var[{key!r}]", names))
        return out

    def _ids_of(self, label: str, names: np.ndarray) -> tuple[str, np.ndarray]:
        if _looks_ensembl(names):  # symbol-keyed vocabulary: map Ensembl IDs to symbols first
            mapped = ensembl_to_symbols(names)
            return (f"{label} (Ensembl IDs mapped to symbols with psysc.gwas.to_symbols)",
                    self.harmonize(["" if m is None else m for m in mapped]))
        return label, self.harmonize(names)

    def choose_gene_ids(self, adata, gene_col: str | None = "auto") -> tuple[str, np.ndarray, np.ndarray]:
        """The gene identifiers of ``adata`` to use and their token ids.

        Parameters
        ----------
        adata
            AnnData whose genes are to be matched.
        gene_col
            ``"auto"``: the source that covers the most vocabulary genes among the symbol columns
            (``feature_name`` first, the official default; then ``gene_symbols``, ``gene_symbol``, ``gene_name``,
            ...), ``var_names`` and, when these cover less than half of the genes, the Ensembl ID columns
            (``gene_ids``, ...). Ensembl IDs are mapped to symbols with :func:`psysc.gwas.to_symbols`. ``None``:
            ``var_names``. A column name: that column.

        Returns
        -------
        tuple[str, numpy.ndarray, numpy.ndarray]
            ``(label, names, token_ids)``: a description of the source, the names and one token id per gene (-1 for
            genes outside the vocabulary).

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.scgpt import ScGPTTokenizer
        >>> adata = psysc.datasets.darmanis2015()
        >>> label, names, ids = ScGPTTokenizer("brain").choose_gene_ids(adata)
        >>> label, int((ids >= 0).sum()) > 15_000
        ('var_names', True)

        """
        if gene_col == "auto":
            best = None
            cands = self._candidates(adata)
            for ensembl_pass in (False, True):
                if ensembl_pass and best is not None and best[0][1] >= 0.5 * adata.n_vars:
                    break  # the symbols suffice: no ID mapping
                for label, names in cands:
                    if _looks_ensembl(names) != ensembl_pass:
                        continue
                    label, ids = self._ids_of(label, names)
                    score = (len(np.unique(ids[ids >= 0])), int((ids >= 0).sum()))
                    if best is None or score > best[0]:
                        best = (score, label, names, ids)
            if best is None:
                raise ValueError("adata.var has no gene names")
            return best[1], best[2], best[3]
        if gene_col is None:
            names = np.asarray(adata.var_names, dtype=object)
            label = "var_names"
        else:
            names = np.asarray(var_column(adata, gene_col).astype(str), dtype=object)
            label = f"var[{gene_col!r}]"
        label, ids = self._ids_of(label, names)
        return label, names, ids

    def overlap_report(self, ids: np.ndarray, names, label: str = "genes", *, check: bool = True) -> dict:
        """How many input genes are in the vocabulary; with ``check``, a ``ValueError`` naming the fix when too few.

        Refused: no gene at all, or fewer than 10 % of the input genes.
        """
        names = [str(x) for x in names]
        n_in = sum(1 for x in names if x)
        matched = int((ids >= 0).sum())
        rep = {"source": label, "n_input_genes": n_in, "n_input_matched": matched,
               "n_vocab_found": int(len(np.unique(ids[ids >= 0]))), "n_vocab_genes": self.vocab_size - 3}
        frac = matched / max(n_in, 1)
        if check and (matched == 0 or frac < MIN_MATCHED_FRACTION):
            sample = ", ".join(names[:5])
            title = sum(bool(_TITLE_CASE_RE.match(x)) for x in names) > 0.5 * max(n_in, 1)
            mouse_ids = sum(x[:7].upper() == "ENSMUSG" for x in names) > 0.5 * max(n_in, 1)
            hint = (f" These look like mouse {'symbols (Actb, Snap25)' if title else 'Ensembl IDs (ENSMUSG)'}: "
                    "rename the columns to their human orthologs, one to one (genes without one are left out, and "
                    "counted), then embed: " + MOUSE_TO_HUMAN_COLUMNS if title or mouse_ids else "")
            raise ValueError(
                f"only {matched:,} of {n_in:,} genes ({100 * frac:.1f}%) of {label} (e.g. {sample}) are in scGPT's "
                f"vocabulary of {rep['n_vocab_genes']:,} human gene symbols, which is matched exactly and "
                f"case-sensitively (at least {100 * MIN_MATCHED_FRACTION:.0f}% are required). Fix: put the human gene "
                "symbols in var['feature_name'] (the official gene_col), or set model.gene_col to the var column that "
                "holds them; Ensembl IDs in var_names or var['gene_ids'] are mapped to symbols automatically "
                "(psysc.gwas.to_symbols)." + hint
            )
        if check and frac < 0.5:
            logger.warning("scGPT: only %.1f%% of the genes of %s are in the vocabulary", 100 * frac, label)
        return rep

    def gene_token_ids(self, adata, gene_col: str | None = "auto", *, check: bool = True) -> tuple[str, np.ndarray]:
        """``(label, token ids)`` of ``adata``'s genes (:meth:`choose_gene_ids`), checked, cached per gene list."""
        key = (gene_col, genes_digest(adata), check)
        if key in self._cache:
            return self._cache[key]
        label, names, ids = self.choose_gene_ids(adata, gene_col)
        rep = self.overlap_report(ids, names, label, check=check)
        uniq, counts = np.unique(ids[ids >= 0], return_counts=True)
        if (counts > 1).any():
            logger.warning(
                "scGPT: %d vocabulary genes occur in several columns of %s (e.g. %s); as in the official embed_data "
                "each column is its own token", int((counts > 1).sum()), label,
                ", ".join(self.tokens[i] for i in uniq[counts > 1][:3]),
            )
        logger.info("scGPT: %s genes of %s matched (%s of %s vocabulary genes) using %s",
                    f"{rep['n_input_matched']:,}", f"{rep['n_input_genes']:,}", f"{rep['n_vocab_found']:,}",
                    f"{rep['n_vocab_genes']:,}", label)
        if len(self._cache) > 8:
            self._cache.clear()
        self._cache[key] = (label, ids)
        return label, ids

    # ------------------------------------------------------------------ tokenisation
    @staticmethod
    def _check_values(data: np.ndarray) -> None:
        if data.dtype.kind not in "iuf":
            raise TypeError(f"expression values must be numeric, not {data.dtype}")
        bad = None
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            bad = "found NaN or infinite values"
        elif data.size and data.dtype.kind != "u" and data.min() < 0:
            bad = "found negative values (scaled or centred data?)"
        if bad:
            raise ValueError(
                f"scGPT needs non-negative expression values where 0 means 'not detected': {bad}. Its levels are the "
                "per-cell ranks of the non-zero values, so raw counts, normalize_total counts and their log1p all give "
                "the same tokens; pass one of those (e.g. layer='counts'), not scaled data."
            )

    def tokenize(self, X, gene_token_ids, keys) -> Tokens:
        """Token sequences (ids and values) of a block of cells.

        Parameters
        ----------
        X
            Cells x genes (CSR/CSC sparse or dense): raw counts or any non-negative per-cell increasing
            normalisation of them.
        gene_token_ids
            Token id of each column (:meth:`harmonize`), -1 for genes outside the vocabulary.
        keys
            One 64-bit key per cell (:func:`cell_keys` of the obs names and the seed).

        Returns
        -------
        psysc.models.Tokens
            :class:`~psysc.models._base.Tokens` in row order: ``<cls>`` (value ``pad_value``) then at most
            ``max_length - 1`` gene tokens with their levels ``1..n_bins-1`` (float32 values); an empty sequence for
            a cell without expressed vocabulary genes.

        """
        X = as_csr(X)
        if not X.has_sorted_indices:  # official order: column order
            X = X.copy()
            X.sort_indices()
        n_cells, n_genes = X.shape
        ids = np.asarray(gene_token_ids, dtype=np.int64)
        if ids.shape != (n_genes,):
            raise ValueError(f"gene_token_ids has {ids.size} entries but X has {n_genes} columns")
        if ids.size and (ids.max() >= self.vocab_size or ids.min() < -1 or np.isin(ids, self._special).any()):
            raise ValueError("gene_token_ids must be -1 or the id of a gene of the vocabulary (see harmonize)")
        keys = np.asarray(keys, dtype=np.uint64)
        if keys.shape != (n_cells,):
            raise ValueError(f"keys must hold one key per cell ({n_cells}), got shape {keys.shape}")
        self._check_values(X.data)

        row_of = np.repeat(np.arange(n_cells, dtype=np.int64), np.diff(X.indptr))
        tok = ids[X.indices]
        keep = (tok >= 0) & (X.data != 0)
        rows, tok = row_of[keep], tok[keep]
        vals = X.data[keep].astype(np.float32)  # the official dataset hands float32 values to the binning
        counts = np.bincount(rows, minlength=n_cells)
        starts = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        pos = np.arange(len(rows), dtype=np.int64) - starts[rows]
        levels = _bin_levels(vals, rows, counts, starts, pos, keys, self.n_bins)

        # sampling: cells with more than max_length - 1 genes keep a random subset (in column order)
        limit = self.max_length - 1
        sel = np.ones(len(rows), dtype=bool)
        long_cells = counts > limit
        if long_cells.any():
            idx = np.flatnonzero(long_cells[rows])
            bits = stream_bits(keys[rows[idx]], pos[idx], STREAM_SAMPLING)
            local = np.cumsum(long_cells)[rows[idx]] - 1  # index among the long cells (rows[idx] is sorted)
            if local[-1] < (1 << 24):  # one key: 24 bits of cell, the top 40 bits of the random number
                sort_key = (local.astype(np.uint64) << np.uint64(40)) | (bits >> np.uint64(24))
                order = np.argsort(sort_key, kind="stable")  # equal keys keep the gene order: deterministic per cell
            else:  # pragma: no cover - blocks of more than 16 M long cells
                order = np.lexsort((bits, rows[idx]))
            r_sorted = rows[idx][order]
            # rank of each gene's key inside its cell: sorted position minus the cell's first sorted position
            first_of_cell = np.r_[0, np.flatnonzero(r_sorted[1:] != r_sorted[:-1]) + 1]
            cell_start = np.repeat(first_of_cell, np.diff(np.r_[first_of_cell, len(order)]))
            rank = np.arange(len(order)) - cell_start
            sel[idx] = False
            sel[idx[order[rank < limit]]] = True
        rows, tok, levels = rows[sel], tok[sel], levels[sel]
        kept = np.minimum(counts, limit)
        lengths = np.where(counts > 0, kept + 1, 0)
        offsets = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out_ids = np.empty(offsets[-1], dtype=np.int64)
        out_vals = np.empty(offsets[-1], dtype=np.float32)
        cls_at = offsets[:-1][counts > 0]
        out_ids[cls_at] = self.cls_id
        out_vals[cls_at] = self.pad_value
        kstart = np.zeros(n_cells + 1, dtype=np.int64)
        np.cumsum(kept, out=kstart[1:])
        dest = offsets[rows] + 1 + (np.arange(len(rows), dtype=np.int64) - kstart[rows])
        out_ids[dest] = tok
        out_vals[dest] = levels
        return Tokens(ids=out_ids, offsets=offsets, values=out_vals)

    def tokenize_adata(self, adata, *, rows: slice | None = None, layer: str | None = None, seed: int = 0,
                       gene_col: str | None = "auto") -> Tokens:
        """Tokenize the cells of ``adata`` (or the row slice ``rows``); the random streams are keyed by obs_names.

        Examples
        --------
        >>> import psysc
        >>> from psysc.models.scgpt import ScGPTTokenizer
        >>> adata = psysc.datasets.darmanis2015()
        >>> t = ScGPTTokenizer("human").tokenize_adata(adata, rows=slice(0, 10))
        >>> t.n_cells, int(t.lengths.max()) <= 1200, float(t.values[0])
        (10, True, -2.0)

        """
        _, ids = self.gene_token_ids(adata, gene_col)
        sel = slice(None) if rows is None else rows
        M = adata.X if layer is None else adata.layers[layer]
        block = M[sel]
        if hasattr(block, "compute"):
            block = block.compute()
        return self.tokenize(block, ids, cell_keys(adata.obs_names[sel], seed))
