"""The small protocol every foundation model implements, so that adding one is adding a folder.

A model is three pieces:

- a **tokenizer**: rows of an AnnData (raw counts, harmonised genes) -> token sequences, pure NumPy,
  exact to the official preprocessing, applied to row blocks;
- a **network**: a ``torch.nn.Module`` whose ``state_dict`` keys match the official checkpoint;
- a **checkpoint**: a registry entry (URL at a pinned revision, sha256, size, licence) and a safe loader.

``psysc.tl.embed`` owns everything shared: device and dtype, length-bucketed batching, streaming of
row blocks, progress, resumable chunked output and provenance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def genes_digest(adata) -> str:
    """A hash of what identifies ``adata``'s genes: ``var_names`` and the names and values of every ``var`` column.

    Tokenizers cache their gene -> token mapping under it, so a changed identifier column (another dataset with the
    same ``var_names``, or a column edited in place) is matched again.
    """
    var = adata.var
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((len(var), [str(c) for c in var.columns])).encode())
    try:
        rows = pd.util.hash_pandas_object(var, index=True, categorize=False).to_numpy()
    except (TypeError, ValueError):  # unhashable cells (lists, dicts): their text
        rows = pd.util.hash_pandas_object(var.astype(str), index=True, categorize=False).to_numpy()
    h.update(rows.tobytes())
    return h.hexdigest()


@dataclass
class Tokens:
    """Token sequences of a block of cells (ragged, stored flat).

    Attributes
    ----------
    ids
        All token ids of all cells, concatenated (int64).
    offsets
        ``(n_cells + 1,)``: cell ``i`` is ``ids[offsets[i]:offsets[i + 1]]``. An empty cell has an empty
        sequence (no vocabulary gene expressed); the engine gives it a row of NaN.
    values
        Optional per-token values of the same length as ``ids`` (e.g. scGPT's binned expression).

    """

    ids: np.ndarray
    offsets: np.ndarray
    values: np.ndarray | None = None

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Sequence length of each cell (0 for an empty cell)."""
        return np.diff(self.offsets)

    def cell(self, i: int) -> np.ndarray:
        """Token ids of cell ``i``."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def emptied(self, cells) -> Tokens:
        """These tokens with the sequences of ``cells`` (a boolean mask over the cells) made empty."""
        cells = np.asarray(cells, dtype=bool)
        if cells.shape != (self.n_cells,):
            raise ValueError(f"cells must be a boolean mask of length {self.n_cells}, not of shape {cells.shape}")
        lengths = np.where(cells, 0, self.lengths)
        keep = np.repeat(~cells, self.lengths)
        offsets = np.zeros(self.n_cells + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = None if self.values is None else self.values[keep]
        return type(self)(ids=self.ids[keep], offsets=offsets, values=values)

    @classmethod
    def from_list(cls, seqs: list[np.ndarray], values: list[np.ndarray] | None = None) -> Tokens:
        """Tokens from one id array per cell (and, optionally, one value array per cell).

        Examples
        --------
        >>> import numpy as np
        >>> from psysc.models import Tokens
        >>> tk = Tokens.from_list([np.array([5, 9]), np.array([], dtype=int), np.array([7])])
        >>> tk.n_cells, tk.lengths.tolist(), tk.cell(2).tolist()
        (3, [2, 0, 1], [7])

        """
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in seqs], out=offsets[1:])
        ids = np.concatenate(seqs).astype(np.int64) if seqs else np.zeros(0, dtype=np.int64)
        vals = None
        if values is not None:
            vals = np.concatenate(values) if values else np.zeros(0)
        return cls(ids=ids, offsets=offsets, values=vals)


@dataclass
class ModelInfo:
    """What a loaded model is, for provenance (``adata.uns["psysc"]["embed"]``).

    Attributes
    ----------
    name
        Registry name (``"geneformer-v2-104m"``) or the local folder's name.
    family
        ``"geneformer"``, ``"scgpt"``, ``"scvi"``, ...
    version
        Version within the family, e.g. ``"V1"``, ``"V2"``.
    revision
        Pinned upstream revision, when known.
    sha256
        File name -> sha256 of the files used.
    licence
        Licence of the weights, when known.
    source
        URL or local directory the files came from.
    extra
        Family-specific details: the weights file, and e.g. layer and pooling (Geneformer) or architecture (scVI).

    """

    name: str
    family: str
    version: str
    revision: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    licence: str | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FoundationModel:
    """Base class of the loaded models (``psysc.models.load(name)`` returns one).

    Subclasses set :attr:`info`, :attr:`embedding_dim`, :attr:`pad_id`, and implement :meth:`tokenize`,
    :meth:`network` and :meth:`embed_batch`.
    """

    #: What the model is (name, revision, sha256 of its files), recorded with every embedding.
    info: ModelInfo
    #: Size of a cell embedding.
    embedding_dim: int
    #: Token id that right-pads the sequences of a batch.
    pad_id: int = 0
    #: True when tokenize() needs raw counts (an error is raised for normalised input)
    needs_counts: bool = True

    def tokenize(self, adata, *, rows: slice | None = None, layer: str | None = None) -> Tokens:
        """Token sequences of the cells of ``adata`` (or of the row slice ``rows``), in row order.

        ``layer`` names the layer with raw counts (default ``adata.X``). Works on backed AnnData: only
        the requested rows are read.
        """
        raise NotImplementedError

    def network(self):
        """The ``torch.nn.Module`` (weights loaded, ``eval()`` mode)."""
        raise NotImplementedError

    def embed_batch(self, input_ids, attention_mask, values=None):
        """Cell embeddings ``(batch, embedding_dim)`` of one padded batch (torch tensors on the model's device).

        ``input_ids`` is ``(batch, length)`` right-padded with :attr:`pad_id`; ``attention_mask`` is 1 on real
        tokens. Pooling follows the model's official semantics and the options given to ``load``.
        """
        raise NotImplementedError

    def check_options(self, *, layer, pooling) -> None:
        """Raise ``ValueError`` when ``layer`` / ``pooling`` are not valid options of this model (none by default)."""

    def to(self, device, dtype=None) -> FoundationModel:
        """Move the network to ``device`` (and floating ``dtype``); returns ``self``."""
        net = self.network()
        if dtype is None:
            net.to(device)
        else:
            net.to(device=device, dtype=dtype)
        return self

    @property
    def device(self):
        """Device of the network's weights."""
        return next(self.network().parameters()).device

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.name} ({self.info.family} {self.info.version})>"


def var_column(adata, column: str) -> pd.Series:
    """``adata.var[column]``, or a ``KeyError`` that lists the columns there are (for ``gene_col``)."""
    if column not in adata.var.columns:
        raise KeyError(f"gene_col={column!r} is not a column of adata.var (columns: {list(adata.var.columns)}); set "
                       "model.gene_col to one of them, None for var_names, or 'auto'")
    return adata.var[column]


class GeneColumnChoice:
    """The ``gene_col`` option of models that read gene identifiers from ``var``.

    ``"auto"`` (the model's rule), ``None`` (``var_names``) or the name of a ``var`` column; recorded in
    ``info.extra["gene_col"]``.
    """

    info: ModelInfo
    _gene_col: str | None = "auto"

    @property
    def gene_col(self) -> str | None:
        """Where the gene identifiers are read: ``"auto"``, ``None`` for ``var_names``, or a ``var`` column."""
        return self._gene_col

    @gene_col.setter
    def gene_col(self, value: str | None) -> None:
        self._gene_col = value
        self.info.extra["gene_col"] = "var_names" if value is None else str(value)
