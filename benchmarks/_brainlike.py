"""Brain-nucleus-like raw counts for the embedding benchmark (``bench_embed.py``).

What matters for a foundation-model embedding benchmark is the *number of expressed genes per cell* (it is the
token sequence length, and the cost of attention grows with its square) and how it varies from cell to cell
(it decides how much padding a batch carries). The model:

- six brain cell types with the proportions and typical complexity of cortical snRNA-seq nuclei: excitatory and
  inhibitory neurons express more genes than glia (median detected genes per type: 2,600 / 2,300 neurons, 1,900
  OPC, 1,700 astrocytes, 1,500 oligodendrocytes, 1,300 microglia);
- the number of detected genes of a cell is log-normal around its type's median (sigma 0.25), clipped to
  ``[min_genes, max_genes]`` (default 800-3,500); over all cells the median is about 2,000;
- genes have log-normal baseline expression (a few housekeeping genes detected in almost every nucleus, a long
  tail of rarely detected ones); each cell type multiplies a random 8% of the genes by a log-normal fold change;
- a cell with scale ``s`` detects gene ``g`` with probability ``1 - exp(-s * mu[type, g])`` (Poisson zero), and
  ``s`` is solved per cell so that the expected number of detected genes is the cell's target; a detected gene
  gets ``1 + Poisson(s * mu * gamma)`` UMIs with a gamma(2, 1/2) over-dispersion factor (so most counts are 1-3,
  with ties, as in nuclei, and a few genes reach tens to hundreds).

Cells are produced block by block (``block(start, stop)``); each block of ``chunk`` cells has its own random
stream, so that the same cell always gets the same counts whatever the order or size of the requests, and
nothing of size ``n_cells x n_genes`` is ever built. ``write_h5ad`` streams a large file in CSR layout with
anndata's ``write_elem`` + ``sparse_dataset(...).append`` API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["BrainLikeCounts", "CELL_TYPES"]

#: name, proportion, median detected genes
CELL_TYPES = (
    ("excitatory_neuron", 0.35, 2600.0),
    ("inhibitory_neuron", 0.12, 2300.0),
    ("oligodendrocyte", 0.25, 1500.0),
    ("astrocyte", 0.12, 1700.0),
    ("OPC", 0.08, 1900.0),
    ("microglia", 0.08, 1300.0),
)


class BrainLikeCounts:
    """A reproducible generator of brain-like raw counts over the given genes.

    Parameters
    ----------
    gene_ids
        ``var_names`` of the AnnData (e.g. Ensembl IDs of a model's vocabulary).
    n_cells
        Number of cells.
    seed
        Seed of every random choice.
    min_genes, max_genes
        Clip of the per-cell number of detected genes.
    sigma
        Log-normal spread of the detected genes around the cell type's median.
    chunk
        Cells per random stream (the unit of reproducibility; ``block`` works for any range).
    """

    def __init__(
        self,
        gene_ids,
        n_cells: int,
        seed: int = 0,
        *,
        min_genes: int = 800,
        max_genes: int = 3500,
        sigma: float = 0.25,
        chunk: int = 1000,
    ):
        self.gene_ids = pd.Index(np.asarray(gene_ids, dtype=str), name="ensembl_id")
        self.n_genes = len(self.gene_ids)
        if max_genes >= self.n_genes:
            raise ValueError(f"max_genes={max_genes} must be below the number of genes ({self.n_genes})")
        self.n_cells = int(n_cells)
        self.seed = int(seed)
        self.chunk = int(chunk)
        rng = np.random.default_rng([self.seed, 0])
        n_types = len(CELL_TYPES)
        # gene baseline expression and cell-type programmes
        mu = np.exp(rng.normal(0.0, 1.8, self.n_genes))
        fc = np.ones((n_types, self.n_genes))
        n_de = max(1, int(0.08 * self.n_genes))
        for t in range(n_types):
            de = rng.choice(self.n_genes, n_de, replace=False)
            fc[t, de] = np.exp(rng.normal(0.0, 1.3, n_de))
        mu_type = mu[None, :] * fc
        mu_type /= mu_type.sum(axis=1, keepdims=True)
        self._mu = mu_type.astype(np.float32)  # (types, genes), each row sums to 1
        # cells: type, target number of detected genes
        p = np.array([c[1] for c in CELL_TYPES])
        self.cell_type = rng.choice(n_types, self.n_cells, p=p / p.sum())
        med = np.array([c[2] for c in CELL_TYPES])
        target = med[self.cell_type] * np.exp(rng.normal(0.0, sigma, self.n_cells))
        self.target_genes = np.clip(target, min_genes, max_genes)
        # scale s of each cell so that E[#detected] = sum_g 1 - exp(-s mu_g) = target (monotone in s: interpolate)
        grid = np.exp(np.linspace(np.log(10.0), np.log(1e8), 400))
        self._scale = np.empty(self.n_cells)
        for t in range(n_types):
            expected = np.array([-np.expm1(-s * mu_type[t]).sum() for s in grid])
            sel = self.cell_type == t
            self._scale[sel] = np.exp(np.interp(self.target_genes[sel], expected, np.log(grid)))

    @property
    def cell_names(self) -> pd.Index:
        width = len(str(max(self.n_cells - 1, 1)))
        return pd.Index([f"nucleus_{i:0{width}d}" for i in range(self.n_cells)], name="cell")

    def obs(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        stop = self.n_cells if stop is None else stop
        names = [c[0] for c in CELL_TYPES]
        return pd.DataFrame(
            {"cell_type": pd.Categorical.from_codes(self.cell_type[start:stop], categories=names)},
            index=self.cell_names[start:stop],
        )

    def var(self) -> pd.DataFrame:
        return pd.DataFrame({"ensembl_id": self.gene_ids.to_numpy()}, index=pd.Index(self.gene_ids, name=None))

    def _chunk(self, c: int) -> sp.csr_matrix:
        start, stop = c * self.chunk, min((c + 1) * self.chunk, self.n_cells)
        rng = np.random.default_rng([self.seed, 1, c])
        m = self._mu[self.cell_type[start:stop]]  # (cells, genes) float32, a copy
        m *= self._scale[start:stop, None].astype(np.float32)
        u = rng.random(m.shape, dtype=np.float32)
        # detected <=> u < 1 - exp(-m)  <=>  -expm1(-m) > u
        pdet = np.negative(m)
        np.expm1(pdet, out=pdet)
        np.negative(pdet, out=pdet)
        rows, cols = np.nonzero(u < pdet)  # row-major: CSR order
        del u, pdet
        mm = m[rows, cols].astype(np.float64)
        del m
        counts = 1.0 + rng.poisson(mm * rng.gamma(2.0, 0.5, len(mm)))
        indptr = np.zeros(stop - start + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=stop - start), out=indptr[1:])
        X = sp.csr_matrix(
            (counts.astype(np.float32), cols.astype(np.int32), indptr), shape=(stop - start, self.n_genes)
        )
        X.has_sorted_indices = True
        return X

    def block(self, start: int, stop: int) -> sp.csr_matrix:
        """Counts of cells ``start:stop`` (CSR float32 holding integers, sorted indices)."""
        if not 0 <= start <= stop <= self.n_cells:
            raise ValueError(f"bad range {start}:{stop} for {self.n_cells} cells")
        parts = []
        for c in range(start // self.chunk, (max(stop, start + 1) - 1) // self.chunk + 1):
            c0 = c * self.chunk
            X = self._chunk(c)
            parts.append(X[max(start - c0, 0) : min(stop - c0, X.shape[0])])
        out = sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
        out.has_sorted_indices = True
        return out

    def anndata(self):
        """All cells in memory as an AnnData (``obs['n_counts']`` = total counts, ``var['ensembl_id']``)."""
        import anndata as ad

        X = self.block(0, self.n_cells)
        obs = self.obs()
        obs["n_counts"] = np.asarray(X.sum(axis=1)).ravel()
        return ad.AnnData(X=X, obs=obs, var=self.var())

    def write_h5ad(self, path: str | Path, *, rows_per_write: int = 10_000, progress=None) -> dict:
        """Stream all cells to ``path`` (CSR ``X``, float32 counts) without holding them in memory.

        ``X`` is written by ``anndata.io.write_elem`` for the first rows and extended with
        ``anndata.io.sparse_dataset(f["X"]).append`` for the next ones; ``obs`` (with ``n_counts``, filled as the
        rows are produced) and ``var`` are written at the end. Returns statistics (nnz, detected genes per cell).
        """
        import h5py
        from anndata.io import sparse_dataset, write_elem

        path = Path(path)
        n_counts = np.empty(self.n_cells, dtype=np.float32)
        n_genes = np.empty(self.n_cells, dtype=np.int64)
        with h5py.File(path, "w") as f:
            for start in range(0, self.n_cells, rows_per_write):
                stop = min(start + rows_per_write, self.n_cells)
                X = self.block(start, stop)
                n_counts[start:stop] = np.asarray(X.sum(axis=1)).ravel()
                n_genes[start:stop] = np.diff(X.indptr)
                if start == 0:
                    write_elem(f, "X", X)
                else:
                    sparse_dataset(f["X"]).append(X)
                if progress is not None:
                    progress(stop)
            obs = self.obs()
            obs["n_counts"] = n_counts
            write_elem(f, "obs", obs)
            write_elem(f, "var", self.var())
            for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
                write_elem(f, key, {})
            f.attrs["encoding-type"] = "anndata"
            f.attrs["encoding-version"] = "0.1.0"
        return {
            "nnz": int(n_genes.sum()),
            "genes_per_cell": _summary(n_genes),
            "counts_per_cell": _summary(n_counts),
            "file_bytes": path.stat().st_size,
        }


def _summary(x: np.ndarray) -> dict:
    q = np.percentile(x, [1, 5, 50, 95, 99])
    return {
        "mean": float(np.mean(x)),
        "min": float(np.min(x)),
        "p1": float(q[0]),
        "p5": float(q[1]),
        "median": float(q[2]),
        "p95": float(q[3]),
        "p99": float(q[4]),
        "max": float(np.max(x)),
    }
