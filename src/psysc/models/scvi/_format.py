"""Reading scvi-tools ``model.pt`` files safely, and the encoder settings they describe.

``scvi.model.SCVI.save(dir)`` writes ``dir/model.pt`` with ``torch.save`` of a dict:

- ``model_state_dict``: the module's tensors (``z_encoder.*``, ``l_encoder.*``, ``decoder.*``, ``px_r``);
- ``var_names``: the model's genes in input order (a NumPy object array of ``str``);
- ``attr_dict``: the model's attributes: ``init_params_`` (constructor arguments), ``registry_`` (how the
  AnnData was set up: batch key and categories, covariates), ``history_`` (training curves as pandas
  DataFrames), ``train_indices_`` ... (NumPy arrays).

A ``torch.save`` file is a pickle, and an unrestricted unpickle can run any code. It is read here with
``torch.load(weights_only=True)``, torch's restricted unpickler, with a minimal allow-list
(:data:`ALLOWED`) given through ``torch.serialization.safe_globals``:

- NumPy's array, scalar and dtype reconstruction (``numpy._core.multiarray._reconstruct`` /
  ``scalar``, ``numpy.ndarray``, ``numpy.dtype`` and the dtype classes of the plain numeric, string and
  object dtypes; also under their NumPy 1.x names ``numpy.core.multiarray.*``). Object arrays are only
  ever rebuilt from a list of already-unpickled (allowed) objects;
- ``builtins.dict``/``bytes``/``slice`` and ``collections.defaultdict`` (read as a plain ``dict``: its
  default factory is never kept or called);
- a fixed list of pandas names (:data:`PANDAS_PLACEHOLDERS`: ``DataFrame``, ``Index``, ``BlockManager``,
  ``_unpickle_block``, ...), which only occur in the training history. They are **not** resolved to
  pandas: each is replaced by an inert placeholder that swallows its arguments and state, so pandas
  code never runs on the file's bytes and the history is dropped.

Anything else (any other class or function, e.g. ``posix.system`` in a crafted file) makes torch refuse
the file, and :func:`read_model_pt` raises ``ValueError`` with torch's diagnosis.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._registry import cache_hint, file_kind_problem

logger = logging.getLogger("psysc")

WEIGHTS_NAME = "model.pt"
#: files of the scvi-tools < 0.15 layout (no model.pt)
LEGACY_FILES = ("model_params.pt", "attr.pkl", "var_names.csv")

#: pandas globals of the training history (``attr_dict["history_"]``): replaced by inert placeholders
PANDAS_PLACEHOLDERS = (
    "pandas.core.frame.DataFrame",
    "pandas.core.series.Series",
    "pandas.core.internals.managers.BlockManager",
    "pandas.core.internals.managers.SingleBlockManager",
    "pandas.core.internals.blocks.new_block",
    "pandas._libs.internals._unpickle_block",
    "pandas._libs.internals.BlockPlacement",
    "pandas.core.indexes.base._new_Index",
    "pandas.core.indexes.base.Index",
    "pandas.core.indexes.range.RangeIndex",
    "pandas.core.indexes.numeric.Int64Index",
    "pandas.core.indexes.numeric.Float64Index",
)


class Dropped:
    """Inert stand-in for a pandas object of the training history: takes any arguments and state, keeps none."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):  # noqa: D102
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):  # noqa: D105
        pass

    def __repr__(self) -> str:
        return "<dropped pandas object>"


def _plain_dict(*args):
    """``collections.defaultdict(factory)`` read as an empty ``dict`` (the factory is dropped, never called)."""
    return {}


def _numpy_globals() -> list:
    recon = np.zeros(1).__reduce__()[0]  # numpy(._)core.multiarray._reconstruct
    scalar = np.float64(0).__reduce__()[0]  # numpy(._)core.multiarray.scalar
    dtype_classes = {type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDGSUO"}
    allowed: list = [recon, scalar, np.ndarray, np.dtype, *sorted(dtype_classes, key=lambda t: t.__name__)]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # files written under NumPy 1.x and 2.x
        allowed += [(recon, f"{mod}._reconstruct"), (scalar, f"{mod}.scalar")]
    return allowed


def allowed_globals() -> list:
    """The allow-list given to ``torch.serialization.safe_globals`` (objects or ``(object, "module.name")``)."""
    return [
        *_numpy_globals(),
        dict,
        bytes,
        slice,
        (_plain_dict, "collections.defaultdict"),
        *[(Dropped, name) for name in PANDAS_PLACEHOLDERS],
    ]


def _refusal(path: Path, err: BaseException) -> ValueError:
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n\t", str(err)) if p.strip()]
    boiler = ("Weights only load failed", "Check the documentation", "Please file an issue", "(1)", "(2)",
              "In PyTorch 2.6")
    detail = "; ".join(p for p in paras if not p.startswith(boiler)) or type(err).__name__
    detail = re.sub(r"\s*Please use `torch\.serialization\.(add_)?safe_globals.*", "", detail)
    return ValueError(
        f"refusing to load {path}: it holds Python objects that psysc does not unpickle ({detail}). psysc reads "
        "scvi-tools model.pt files with torch.load(weights_only=True), allowing only tensors, NumPy arrays, "
        "dtypes and scalars, plain containers and the pandas training history (dropped unread); anything else "
        "would need an unrestricted unpickle, which can run code. If you trust the file, load it with "
        "scvi-tools and save it again with model.save() from scvi-tools >= 1.0, or re-train the model."
    )


def read_model_pt(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a scvi-tools ``model.pt``, read with torch's restricted unpickler.

    Parameters
    ----------
    path
        The ``model.pt`` file (or the folder holding it).

    Returns
    -------
    A dict with ``model_state_dict`` (name -> tensor), ``var_names`` (NumPy array of ``str``) and
    ``attr_dict`` (pandas objects of the training history replaced by :class:`Dropped`).

    Raises
    ------
    ValueError
        For a file that needs anything beyond the allow-list (the object torch refused is named), or that
        is not an scvi-tools model file.

    Examples
    --------
    >>> from psysc.models.scvi._format import read_model_pt
    >>> ckpt = read_model_pt("census-scvi/model.pt")  # doctest: +SKIP
    >>> ckpt["attr_dict"]["registry_"]["model_name"]  # doctest: +SKIP
    'SCVI'

    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not hasattr(torch.serialization, "safe_globals"):
        raise ImportError(f"reading scvi-tools model files safely needs torch >= 2.6 (found {torch.__version__}): "
                          "pip install -U torch")
    problem = file_kind_problem(path) if path.is_file() else None
    if problem is not None:
        raise ValueError(f"{path} {problem}; it is not an scvi-tools model file{cache_hint(path)}")
    try:
        with torch.serialization.safe_globals(allowed_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the restricted unpickler refused, report it the same way
        raise _refusal(path, err) from None
    if not isinstance(obj, dict) or not {"model_state_dict", "var_names", "attr_dict"} <= set(obj):
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(
            f"{path} is not an scvi-tools model file (expected a dict with model_state_dict, var_names and "
            f"attr_dict, as written by model.save(); found {keys})"
        )
    return obj


def _find_dropped(obj, where: str) -> str | None:
    """Path of the first :class:`Dropped` placeholder inside ``obj`` (None when there is none)."""
    if isinstance(obj, Dropped):
        return where
    if isinstance(obj, dict):
        for k, v in obj.items():
            hit = _find_dropped(v, f"{where}[{k!r}]")
            if hit:
                return hit
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            hit = _find_dropped(v, f"{where}[{i}]")
            if hit:
                return hit
    return None


#: SCVI / VAE constructor defaults (scvi-tools 1.x) of the options that change the encoder's mean
_DEFAULTS = {
    "n_hidden": 128,
    "n_latent": 10,
    "n_layers": 1,
    "log_variational": True,
    "latent_distribution": "normal",
    "encode_covariates": False,
    "deeply_inject_covariates": True,
    "batch_representation": "one-hot",
    "use_batch_norm": "both",
    "use_layer_norm": "none",
}


@dataclass
class Covariate:
    """One categorical covariate the encoder sees as a one-hot block (batch or an extra categorical key)."""

    key: str  # obs column at training time
    categories: np.ndarray  # category of each one-hot column, in order


@dataclass
class ScVIConfig:
    """What the encoder of a saved SCVI model needs: genes, architecture and covariates."""

    var_names: np.ndarray
    n_hidden: int
    n_latent: int
    n_layers: int
    log_variational: bool
    latent_distribution: str
    encode_covariates: bool
    deeply_inject_covariates: bool
    use_batch_norm: bool
    use_layer_norm: bool
    batch_key: str | None
    categorical: list[Covariate] = field(default_factory=list)  # one-hot blocks fed to the encoder, in order
    continuous: list[str] = field(default_factory=list)  # continuous covariates fed to the encoder, in order
    model_name: str = "SCVI"
    scvi_version: str = ""

    @property
    def n_genes(self) -> int:
        return len(self.var_names)

    @property
    def n_onehot(self) -> int:
        return int(sum(len(c.categories) for c in self.categorical))


def _flat_init_params(init_params) -> dict:
    if not isinstance(init_params, dict):
        raise ValueError("attr_dict['init_params_'] is missing or not a dict: not an scvi-tools >= 0.15 model file")
    flat = dict(init_params.get("non_kwargs", {}))
    for v in init_params.get("kwargs", {}).values():  # {"kwargs": {...}} or {"model_kwargs": {...}}
        if isinstance(v, dict):
            flat.update(v)
    return flat


def _norm_flag(value, part: str) -> bool:
    """``use_batch_norm`` / ``use_layer_norm`` ("encoder", "decoder", "both", "none" or a bool) for the encoder."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value not in ("encoder", "decoder", "both", "none"):
        raise ValueError(f"unknown {part}={value!r} in init_params_ (expected 'encoder', 'decoder', 'both' or 'none')")
    return value in ("encoder", "both")


def parse_config(ckpt: dict[str, Any]) -> ScVIConfig:
    """The encoder settings of a read ``model.pt`` (:func:`read_model_pt`), checked for what psysc supports."""
    attr = ckpt["attr_dict"]
    registry = attr.get("registry_")
    if not isinstance(registry, dict):
        raise ValueError("attr_dict['registry_'] is missing: not an scvi-tools >= 0.15 model file")
    params = _flat_init_params(attr.get("init_params_"))
    for where, obj in (("init_params_", params), ("registry_", registry)):
        hit = _find_dropped(obj, where)
        if hit:
            raise ValueError(f"attr_dict {hit} is a pandas object; psysc expects plain data there")
    model_name = str(registry.get("model_name", ""))
    if model_name != "SCVI":
        raise ValueError(
            f"this is an scvi-tools {model_name or 'unknown'} model; psysc embeds with SCVI models only"
        )
    opts = {k: params.get(k, v) for k, v in _DEFAULTS.items()}
    extra_enc = params.get("extra_encoder_kwargs") or {}
    if extra_enc:
        raise ValueError(f"extra_encoder_kwargs={extra_enc!r} change the encoder; psysc supports the standard SCVI "
                         "encoder only")
    if opts["latent_distribution"] not in ("normal", "ln"):
        raise ValueError(f"unknown latent_distribution={opts['latent_distribution']!r}")
    var_names = np.asarray(ckpt["var_names"]).astype(str)
    if var_names.ndim != 1 or len(var_names) == 0:
        raise ValueError("var_names of the model file is not a non-empty list of gene names")

    fields = registry.get("field_registries", {}) or {}
    setup = registry.get("setup_args", {}) or {}
    batch_state = (fields.get("batch") or {}).get("state_registry", {}) or {}
    batch_cats = np.asarray(batch_state.get("categorical_mapping", np.array(["0"]))).astype(str)
    batch_key = batch_state.get("original_key", setup.get("batch_key"))
    encode = bool(opts["encode_covariates"])
    categorical: list[Covariate] = []
    continuous: list[str] = []
    if encode:
        if opts["batch_representation"] != "one-hot":
            raise ValueError(
                f"batch_representation={opts['batch_representation']!r} with encode_covariates=True is not supported "
                "(psysc reads the one-hot batch encoding only)"
            )
        cat_state = (fields.get("extra_categorical_covs") or {}).get("state_registry", {}) or {}
        blocks = [Covariate(str(batch_key), batch_cats)]
        mappings = cat_state.get("mappings", {}) or {}
        for key in cat_state.get("field_keys", list(mappings)):
            blocks.append(Covariate(str(key), np.asarray(mappings[key]).astype(str)))
        categorical = [c for c in blocks if len(c.categories) > 1]  # scvi-tools ignores 1-category covariates
        cont_state = (fields.get("extra_continuous_covs") or {}).get("state_registry", {}) or {}
        continuous = [str(c) for c in np.asarray(cont_state.get("columns", np.array([], dtype=object)))]
    return ScVIConfig(
        var_names=var_names,
        n_hidden=int(opts["n_hidden"]),
        n_latent=int(opts["n_latent"]),
        n_layers=int(opts["n_layers"]),
        log_variational=bool(opts["log_variational"]),
        latent_distribution=str(opts["latent_distribution"]),
        encode_covariates=encode,
        deeply_inject_covariates=bool(opts["deeply_inject_covariates"]),
        use_batch_norm=_norm_flag(opts["use_batch_norm"], "use_batch_norm"),
        use_layer_norm=_norm_flag(opts["use_layer_norm"], "use_layer_norm"),
        # a model set up without batch_key has scvi-tools' one-category placeholder batch ("_scvi_batch"): no batch
        batch_key=None if batch_key is None or (setup.get("batch_key", "") is None and len(batch_cats) == 1)
        else str(batch_key),
        categorical=categorical,
        continuous=continuous,
        model_name=model_name,
        scvi_version=str(registry.get("scvi_version", "")),
    )


def state_digest(state: dict) -> str:
    """SHA-256 of a state dict's tensors (sorted names, dtype, shape, bytes): the identity of trained weights."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
