"""scGPT (Cui et al. 2024; bowang-lab/scGPT, MIT): zero-shot tokenizer, shipped vocabularies and args.

The whole-human and brain checkpoints share the vocabulary (60,697 case-sensitive gene symbols) and the
architecture; the network and the loader live in ``_network`` / ``_model`` (torch). Importing this package does
not import torch.
"""

from ._tokenizer import (
    ScGPTTokenizer,
    bin_values,
    cell_keys,
    ensembl_to_symbols,
    official_args,
    official_vocab,
    read_vocab_json,
)

__all__ = [
    "ScGPTTokenizer",
    "bin_values",
    "cell_keys",
    "ensembl_to_symbols",
    "official_args",
    "official_vocab",
    "read_vocab_json",
]
