"""Pretrained single-cell foundation models: the registry, the loader and the model protocol.

Importing :mod:`psysc.models` is light (no torch, no transformers): torch is imported by :func:`load`.

- :func:`available` lists the models psysc can download (pinned revision, sha256, licence, cached or not);
- :func:`load` returns a :class:`FoundationModel` from a registry name (downloaded once into
  ``psysc.settings.cachedir``, hash-checked) or from a local directory in the official layout;
  scvi-tools ``SCVI`` models (a folder with ``model.pt``, or ``"scvi-census"``) load the same way and embed with
  the encoder's latent mean;
- :class:`Tokens`, :class:`FoundationModel` and :class:`ModelInfo` are the protocol every model implements
  (see ``psysc/models/_base.py``).
"""

from __future__ import annotations

import os

from .._registry import available, read_json_object
from ._base import FoundationModel, ModelInfo, Tokens

__all__ = ["FoundationModel", "ModelInfo", "Tokens", "available", "load"]

_DTYPES = ("float32", "bfloat16", "float16")


def _torch_dtype(dtype):
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, a torch.dtype or None, not {dtype!r}")
    return getattr(torch, dtype)


def _geneformer_class():
    from .geneformer._model import Geneformer

    return Geneformer


def _scvi_class():
    from .scvi._model import ScVI

    return ScVI


def _scgpt_class():
    from .scgpt._model import ScGPT

    return ScGPT


#: model family -> a function returning its class (imported on use, so torch loads only when needed).
#: Every class has ``from_directory(directory, *, layer, pooling, info) -> FoundationModel``.
_FAMILIES = {"geneformer": _geneformer_class, "scvi": _scvi_class, "scgpt": _scgpt_class}

#: (family, files that identify a local checkpoint folder of that family), checked in order.
_LAYOUTS: list[tuple[str, tuple[str, ...]]] = [("geneformer", ("config.json",)), ("scvi", ("model.pt",)),
                                              ("scgpt", ("best_model.pt", "vocab.json", "args.json"))]


def detect_family(directory) -> str:
    """The model family of a local checkpoint folder, from the files of its official layout."""
    from pathlib import Path

    directory = Path(directory)
    for family, files in _LAYOUTS:
        if all((directory / f).is_file() for f in files):
            if family == "geneformer":
                cfg = read_json_object(directory / "config.json")
                model_type = cfg.get("model_type", "bert")
                if model_type != "bert":
                    raise ValueError(
                        f"{directory / 'config.json'}: model_type={model_type!r} is not a model psysc can load "
                        "(Geneformer: 'bert')"
                    )
            return family
    layouts = "; ".join(f"{fam}: {' + '.join(files)}" for fam, files in _LAYOUTS)
    raise FileNotFoundError(f"{directory} is not a model folder in an official layout ({layouts})")


def load(name_or_path: str | os.PathLike, *, layer: int = -1, pooling: str | None = None, device: str | None = None,
         dtype=None, base_url: str | None = None) -> FoundationModel:
    """Load a pretrained foundation model (weights read safely, ready for :func:`psysc.tl.embed`).

    Parameters
    ----------
    name_or_path
        A name from :func:`available` (downloaded on first use into ``psysc.settings.cachedir / "models"``,
        every file checked against its sha256 each time it is used; ``config.json`` has no published hash,
        so the sha256 seen at its first download is recorded in the cache and checked from then on), or a
        local directory in the official layout: ``config.json`` + ``model.safetensors`` (or
        ``pytorch_model.bin``). Geneformer V1 and V2 are told apart by ``config.json``'s ``vocab_size``
        (25,426 vs 20,275). scGPT (``"scgpt-human"``, ``"scgpt-brain"``, or a local folder): ``best_model.pt`` +
        ``vocab.json`` + ``args.json``; whole-human and brain are told apart by the training data named in
        ``args.json``. ``best_model.pt`` is read with ``torch.load(weights_only=True)`` only, and every encoder
        weight must be present with the right shape. scVI (``"scvi-census"`` or a folder with scvi-tools'
        ``model.pt``): the encoder's latent mean.
    layer
        Hidden layer to read. ``-1`` (default) is the official ``EmbExtractor`` default ``emb_layer=-1``: the
        output of the **second-to-last** encoder layer, ``hidden_states[L - 1]``. ``0`` is the last layer;
        ``-k`` is ``hidden_states[L - k]``. A positive ``k`` indexes ``hidden_states`` directly
        (``1`` = first encoder layer, ``L`` = last). Layers after the requested one are not computed.
        **scGPT**: ``-1`` (default) is the official cell embedding, the output of the **last** encoder layer;
        ``-k`` is the ``k``-th layer from the end, ``k > 0`` the output of layer ``k``; ``0`` is refused.
    pooling
        ``"mean"``: average over the real gene tokens (V2 without ``<cls>`` and ``<eos>``; the official
        ``emb_mode="cell"``). ``"cls"``: the ``<cls>`` token (V2 only). ``None``: the official default,
        ``"cls"`` for V2 and ``"mean"`` for V1 (which has no ``<cls>``). **scGPT**: ``None`` / ``"cls"`` (official):
        the ``<cls>`` position; ``"mean"``: mean over the gene tokens (not an official mode); both L2-normalised
        as the official embedding. The seed of scGPT's per-cell random streams (tie breaking of the binning, gene
        sampling above 1,199 genes) is ``model.seed`` (default 0).
    device
        ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``; ``None`` uses ``psysc.settings.device``.
    dtype
        ``"float32"`` (weights as published), ``"bfloat16"``, ``"float16"`` or a ``torch.dtype``; ``None``
        keeps float32.
    base_url
        Download from this mirror (``<base_url>/<revision>/<folder>/<file>``) instead of
        ``$PSYSC_MODEL_BASE_URL`` or Hugging Face.

    Returns
    -------
    psysc.models.FoundationModel
        The loaded model; ``model.info`` holds the provenance (revision, sha256 of the files).

    Raises
    ------
    ValueError
        For a name that is neither registered nor a folder (the message names the close registered names); for
        a checkpoint that is not a Geneformer BERT (unknown vocabulary size, missing or misshaped weights), an
        scGPT ``best_model.pt`` without every encoder weight in its shape, and for a ``pytorch_model.bin`` or
        ``best_model.pt`` that is not a plain tensor pickle (it is never unpickled); for cached files of another
        model version than the name's.
    FileNotFoundError
        For a folder in none of the official layouts.

    Examples
    --------
    >>> import psysc
    >>> model = psysc.models.load("geneformer-v2-104m")  # doctest: +SKIP
    >>> model.info.revision  # doctest: +SKIP
    '05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28'
    >>> v1 = psysc.models.load("/data/Geneformer-V1-10M", layer=0)  # a local folder  # doctest: +SKIP
    >>> brain = psysc.models.load("scgpt-brain")  # best_model.pt placed in the cache by hand  # doctest: +SKIP
    >>> brain.seed = 1  # doctest: +SKIP

    """
    from .._registry import REGISTRY, check_model_ref, expected_sha256, fetch_model

    directory = check_model_ref(name_or_path)
    if directory is None:
        entry = REGISTRY[name_or_path]
        directory = fetch_model(entry.name, base_url=base_url)
        info = ModelInfo(
            name=entry.name,
            family=entry.family,
            version=entry.version,
            revision=entry.revision,
            sha256={f.name: expected_sha256(entry, f) or "" for f in entry.files},
            licence=entry.licence,
            source=entry.url(entry.weights.name, base_url),
            extra={"weights": entry.weights.name},
        )
        family = entry.family
    else:
        entry, info = None, None
        family = detect_family(directory)

    from .._core._engine import kept_random_state

    with kept_random_state():  # the network's random initial weights are not drawn from the caller's generators
        model = _FAMILIES[family]().from_directory(directory, layer=layer, pooling=pooling, info=info)
    if entry is not None and model.info.version != entry.version:
        raise ValueError(
            f"{directory} holds {family} {model.info.version}, but {entry.name} is {entry.version}: "
            "the cached files do not belong to this model; delete the folder to download it again"
        )
    from .._core._torch import resolve_device

    tdtype = _torch_dtype(dtype)
    dev = resolve_device(device)
    dev = "cpu" if dev == "torch-cpu" else dev
    if dev != "cpu" or tdtype is not None:
        model.to(dev, tdtype)
    return model
