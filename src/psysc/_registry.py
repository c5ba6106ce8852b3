"""The one registry of files psysc downloads: pretrained model weights, pinned and hash-checked.

Every entry names the upstream repository, a pinned revision, each file's sha256 and size, and the
licence. Files are fetched with :mod:`pooch` into ``settings.cachedir / "models" / <name> /`` and their
sha256 is checked by pooch while downloading and by psysc every time a cached file is used:

- a cached file whose sha256 differs from the expected one is reported (``logger.warning`` naming the
  file), deleted and downloaded again;
- a download whose sha256 differs is an error and nothing is kept;
- some small files (each model's ``config.json``) have no published sha256. For those, the sha256
  computed at the first download is recorded in ``<cache>/models/<name>/psysc-sha256.json`` and every
  later use is verified against that record (trust on first use). A file that no longer matches its
  record is treated like any corrupt file; a server that later serves other bytes is an error.

Downloads only go to the URL of the entry: ``<base_url>/<revision>/<folder>/<file>`` where
``base_url`` is ``https://huggingface.co/ctheodoris/Geneformer/resolve`` unless the ``base_url``
argument or the ``PSYSC_MODEL_BASE_URL`` environment variable names a mirror (with the same layout).

Without network, place the files yourself at the cache path given in the error message (known hashes
are still checked), or give :func:`psysc.models.load` a local directory in the official layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ._settings import settings

logger = logging.getLogger("psysc")

#: Environment variable naming a mirror of the upstream file layout (used instead of Hugging Face).
ENV_BASE_URL = "PSYSC_MODEL_BASE_URL"
GENEFORMER_BASE_URL = "https://huggingface.co/ctheodoris/Geneformer/resolve"
#: Where the first-use sha256 of files without a published hash is recorded (one per model folder).
RECORD_NAME = "psysc-sha256.json"

_GENEFORMER_REV = "05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28"  # HF revision of 2026-02-06
_GENEFORMER_12L_REV = "933ca80e39d421c47a12168699766bb7e4e2c197"  # last HF revision with the V1 12L model


class DownloadError(OSError):
    """A registry file is neither cached nor downloadable (no network, file missing upstream, ...)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a registry entry.

    Attributes
    ----------
    name
        File name inside the model folder (``config.json``, ``model.safetensors``, ...).
    sha256
        Published SHA-256 (hex) or ``None`` when none is published (then trust on first use).
    size
        Size in bytes when known.
    """

    name: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A downloadable pretrained model.

    Attributes
    ----------
    name
        psysc's name of the model (``"geneformer-v2-104m"``); also its cache folder.
    family, version
        Model family (``"geneformer"``) and its version (``"V1"``, ``"V2"``).
    folder
        Folder of the files in the upstream repository.
    revision
        Pinned upstream revision (a git commit id).
    files
        The files that make a loadable model folder (``config.json`` and the weights).
    layers, hidden_size, n_heads, max_length
        Architecture (encoder layers, hidden size, attention heads, longest input in tokens).
    licence
        Licence of the weights.
    base_url
        Default base of the download URLs, ``<base_url>/<revision>/<folder>/<file>``.
    """

    name: str
    family: str
    version: str
    folder: str
    revision: str
    files: tuple[RemoteFile, ...]
    layers: int
    hidden_size: int
    n_heads: int
    max_length: int
    licence: str = "Apache-2.0"
    base_url: str = GENEFORMER_BASE_URL

    @property
    def weights(self) -> RemoteFile:
        """The weight file (the one file that is not ``config.json``)."""
        return next(f for f in self.files if f.name != "config.json")

    def url(self, file: str, base_url: str | None = None) -> str:
        """Download URL of ``file`` (``base_url`` argument > ``$PSYSC_MODEL_BASE_URL`` > the entry's default)."""
        base = base_url or os.environ.get(ENV_BASE_URL) or self.base_url
        return f"{base.rstrip('/')}/{self.revision}/{self.folder}/{file}"


def _geneformer(name, version, folder, weights, sha256, size, layers, hidden, heads, max_length, revision):
    return ModelEntry(
        name=name,
        family="geneformer",
        version=version,
        folder=folder,
        revision=revision,
        files=(RemoteFile("config.json"), RemoteFile(weights, sha256, size)),
        layers=layers,
        hidden_size=hidden,
        n_heads=heads,
        max_length=max_length,
    )


#: Every downloadable model, by name. Sizes and sha256 are the Git-LFS pointers of the official files.
REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        _geneformer("geneformer-v1-10m", "V1", "Geneformer-V1-10M", "model.safetensors",
                    "a5e33a757431643b3697de7ef6127950cdc49e06e58d4266b3a3ab191b683f14", 41_183_536,
                    6, 256, 4, 2048, _GENEFORMER_REV),
        _geneformer("geneformer-v1-12l", "V1", "gf-12L-30M-i2048", "pytorch_model.bin",
                    "812f8d85e5ecf9d64c268f052f6ece2c1906bc4f1aecf70d5144b2598386b615", 158_467_410,
                    12, 512, 8, 2048, _GENEFORMER_12L_REV),
        _geneformer("geneformer-v2-104m", "V2", "Geneformer-V2-104M", "model.safetensors",
                    "fff5cba29ddd8792991fa77b4872246fbe548a178cebda3775cdc72b67780e7f", 417_571_156,
                    12, 768, 12, 4096, _GENEFORMER_REV),
        _geneformer("geneformer-v2-316m", "V2", "Geneformer-V2-316M", "model.safetensors",
                    "965ceccea81953d362081ef3843560a0e4fef88d396c28017881f1e94b1246f3", 1_265_455_076,
                    18, 1152, 18, 4096, _GENEFORMER_REV),
    )
}


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name`` (a clear error listing the names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in psysc's model registry; known models: {sorted(REGISTRY)}") from None


def check_model_ref(name_or_path) -> Path | None:
    """Validate ``model=``: a registry name (returns ``None``) or a checkpoint directory (returns its path).

    Raises ``ValueError`` naming the registered models for anything else.
    """
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        return None
    directory = Path(name_or_path).expanduser()
    if not directory.exists():
        raise ValueError(
            f"{str(name_or_path)!r} is neither a model name ({', '.join(sorted(REGISTRY))}; see "
            "psysc.models.available()) nor an existing directory (config.json + model.safetensors)"
        )
    if not directory.is_dir():
        raise ValueError(f"{directory} is a file: give the model directory (config.json + weights)")
    return directory


def model_dir(name: str) -> Path:
    """Cache folder of model ``name``: ``settings.cachedir / "models" / name``."""
    return Path(settings.cachedir) / "models" / name


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_record(folder: Path) -> dict[str, str]:
    f = folder / RECORD_NAME
    if not f.exists():
        return {}
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{f} is not readable JSON ({err}); delete it to re-record the hashes") from None
    return {str(k): str(v) for k, v in data.items()}


def _write_record(folder: Path, file: str, digest: str) -> None:
    record = _read_record(folder)
    record[file] = digest
    tmp = folder / f".{RECORD_NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, folder / RECORD_NAME)


def expected_sha256(entry: ModelEntry, file: RemoteFile) -> str | None:
    """The sha256 a cached file must have: the published one, else the one recorded at first download."""
    if file.sha256 is not None:
        return file.sha256.lower()
    return _read_record(model_dir(entry.name)).get(file.name)


def _manual_help(entry: ModelEntry, file: RemoteFile, url: str, path: Path, expected: str | None) -> str:
    check = f"sha256 {expected}" if expected else "its sha256 is recorded at first use"
    return (
        f"To use it offline, download {url} elsewhere and place it at {path} ({check}), "
        f"or set ${ENV_BASE_URL} (or base_url=) to a mirror with the layout <base>/<revision>/<folder>/<file>, "
        f"or pass a local directory in the official layout (config.json + model.safetensors or "
        f"pytorch_model.bin) to psysc.models.load('/path/to/{entry.folder}')."
    )


def fetch_file(entry: ModelEntry, file: RemoteFile, *, base_url: str | None = None) -> Path:
    """Path of one verified file of ``entry`` in the cache, downloading it when missing or corrupt.

    Parameters
    ----------
    entry
        The registry entry.
    file
        One of ``entry.files``.
    base_url
        Mirror to download from instead of the default (see :meth:`ModelEntry.url`).

    Returns
    -------
    Path of the verified file.
    """
    folder = model_dir(entry.name)
    path = folder / file.name
    expected = expected_sha256(entry, file)
    if path.exists():
        digest = sha256sum(path)
        if expected is None:
            # placed by hand (or record lost) and no published hash: trust it now, verify it from now on
            folder.mkdir(parents=True, exist_ok=True)
            _write_record(folder, file.name, digest)
            logger.info("recorded sha256 %s of %s (no published hash; verified on every later use)", digest, path)
            return path
        if digest == expected:
            return path
        logger.warning(
            "cached file %s is corrupt (sha256 %s, expected %s): deleting it and downloading it again",
            path, digest, expected,
        )
        path.unlink()

    import pooch
    import requests

    url = entry.url(file.name, base_url)
    key = f"{entry.name}/{file.name}"
    pup = pooch.create(
        path=folder.parent,
        base_url="",
        registry={key: f"sha256:{expected}" if expected else None},
        urls={key: url},
        allow_updates=False,
    )
    logger.info("downloading %s to %s", url, path)
    try:
        fetched = Path(pup.fetch(key, progressbar=settings.show_progress))
    except (requests.exceptions.RequestException, OSError) as err:
        raise DownloadError(
            f"could not download {url} ({type(err).__name__}: {err}). It is needed at {path}. "
            + _manual_help(entry, file, url, path, expected)
        ) from None
    except ValueError as err:  # pooch: the hash of the downloaded file differs
        where = (
            "the sha256 pinned in psysc's registry" if file.sha256 else f"the sha256 recorded in {folder / RECORD_NAME}"
        )
        raise ValueError(
            f"the file downloaded from {url} does not match {where} ({expected}); it was not kept. "
            f"The server holds other bytes than expected (pooch: {err})."
        ) from None
    if expected is None:
        digest = sha256sum(fetched)
        _write_record(folder, file.name, digest)
        logger.info("recorded sha256 %s of %s (no published hash; verified on every later use)", digest, fetched)
    return fetched


def fetch_model(name: str, *, base_url: str | None = None) -> Path:
    """Folder with every verified file of registry model ``name`` (downloaded on demand).

    Parameters
    ----------
    name
        A name from :func:`psysc.models.available`.
    base_url
        Mirror to download from instead of ``$PSYSC_MODEL_BASE_URL`` or the upstream default.

    Returns
    -------
    The model's cache folder, ``settings.cachedir / "models" / name``.

    Examples
    --------
    >>> from psysc._registry import fetch_model
    >>> folder = fetch_model("geneformer-v1-10m")  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    ['config.json', 'model.safetensors', 'psysc-sha256.json']
    """
    entry = get_entry(name)
    for file in entry.files:
        fetch_file(entry, file, base_url=base_url)
    return model_dir(name)


def is_cached(name: str) -> bool:
    """Whether every file of model ``name`` is in the cache (present; hashes are checked on use)."""
    entry = get_entry(name)
    folder = model_dir(name)
    return all((folder / f.name).is_file() for f in entry.files)


def available():
    """The pretrained models psysc can download and load.

    Returns
    -------
    :class:`pandas.DataFrame` with one row per model: ``name``, ``family``, ``version``, ``layers``,
    ``hidden_size``, ``n_heads``, ``max_length`` (tokens), ``size_mb`` (weights, 10^6 bytes), ``licence``,
    ``revision`` (pinned upstream commit) and ``cached`` (all files already in ``settings.cachedir``).

    Examples
    --------
    >>> import psysc.models
    >>> df = psysc.models.available()
    >>> df.loc[df.name == "geneformer-v2-104m", ["version", "layers", "hidden_size"]].values.tolist()
    [['V2', 12, 768]]
    """
    import pandas as pd

    rows = []
    for e in REGISTRY.values():
        size = e.weights.size
        rows.append(
            {
                "name": e.name,
                "family": e.family,
                "version": e.version,
                "layers": e.layers,
                "hidden_size": e.hidden_size,
                "n_heads": e.n_heads,
                "max_length": e.max_length,
                "size_mb": round(size / 1e6, 1) if size is not None else float("nan"),
                "licence": e.licence,
                "revision": e.revision,
                "cached": is_cached(e.name),
            }
        )
    return pd.DataFrame(rows)
