"""Geneformer (Theodoris et al. 2023; ctheodoris/Geneformer, Apache-2.0): tokenizer and dictionaries.

Importing this package does not import torch.
"""

from ._tokenizer import GeneformerTokenizer, choose_gene_ids

__all__ = ["GeneformerTokenizer", "choose_gene_ids"]
