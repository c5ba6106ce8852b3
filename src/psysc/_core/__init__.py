"""Array-level kernels (no AnnData): statistics, control sets, scoring, Geary's C, row blocks."""
