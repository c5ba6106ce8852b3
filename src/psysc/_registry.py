"""The one registry of files psysc downloads: pretrained model weights, pinned and hash-checked.

Every entry names the upstream repository, a pinned revision, each file's sha256 and size, and the
licence. Files are fetched with :mod:`pooch` into ``settings.cachedir / "models" / <name> /`` and their
sha256 is checked by pooch while downloading and by psysc every time a cached file is used:

- a cached file whose sha256 differs from the expected one is reported (``logger.warning`` naming the
  file), moved aside (``<file>.corrupt``, deleted once a good copy is downloaded) and downloaded again;
- a download whose sha256 differs is an error and nothing is kept;
- some files (each model's ``config.json``, the Census scVI ``model.pt``, scgpt-brain's ``best_model.pt``) have
  no published sha256. For those, the sha256 of the first copy (downloaded or placed by hand) is recorded in
  ``<cache>/models/<name>/psysc-sha256.json`` and every later use is verified against that record (trust on first
  use). Before it is recorded, the first copy must be the kind of file its name says (a JSON object, a file
  written by ``torch.save``, a safetensors file; not empty, not a web page such as a proxy's login page). A file
  that no longer matches its record is treated like any corrupt file; a server that later serves other bytes is
  an error.

Downloads only go to the URL of the entry: ``<base_url>/<revision>/<folder>/<file>`` where
``base_url`` is ``https://huggingface.co/ctheodoris/Geneformer/resolve`` (the CELLxGENE Census bucket
``https://cellxgene-contrib-public.s3.amazonaws.com/models/scvi`` for ``scvi-census``) unless the ``base_url``
argument or the ``PSYSC_MODEL_BASE_URL`` environment variable names a mirror (with the same layout).

scGPT (``scgpt-human``, ``scgpt-brain``) is hosted on Google Drive, which offers no stable direct-download
URL. ``scgpt-human`` downloads by default from the public S3 copy used by CZI scGenePT
(``https://czi-scgenept-public.s3.amazonaws.com/models/pretrained/scgpt/<file>``); ``scgpt-brain`` has no
direct-download host: place its files by hand (the error message names the Drive folder and the cache path) or
use a mirror. A mirror (``base_url`` / ``$PSYSC_MODEL_BASE_URL``) has the same layout for every model; for
scGPT ``<revision>`` is the id of the official Drive folder and ``<folder>`` ``scGPT_human`` / ``scGPT_brain``.

Without network, place the files yourself at the cache path given in the error message (known hashes
are still checked), or give :func:`psysc.models.load` a local directory in the official layout.
"""

from __future__ import annotations

import difflib
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
#: CELLxGENE Census scVI models: <base>/<census release>/<organism>/model.pt (public S3 bucket, over HTTPS)
CENSUS_SCVI_BASE_URL = "https://cellxgene-contrib-public.s3.amazonaws.com/models/scvi"


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
        Default base of the download URLs, ``<base_url>/<revision>/<folder>/<file>``; ``None`` when there is none.
    weights_file
        Name of the weight file when the entry has several files besides ``config.json`` (scGPT: ``best_model.pt``).
    file_url
        Default download URL of each file when the default host does not use the mirror layout: a template with
        ``{file}``. Not used when a mirror is given (``base_url=`` or ``$PSYSC_MODEL_BASE_URL``).
    manual_source
        Where the files can be fetched by hand (shown in download errors), e.g. the official Google Drive folder.

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
    base_url: str | None = GENEFORMER_BASE_URL
    weights_file: str | None = None
    file_url: str | None = None
    manual_source: str | None = None

    @property
    def weights(self) -> RemoteFile:
        """The weight file (``weights_file``, else the one file that is not ``config.json``)."""
        if self.weights_file is not None:
            return next(f for f in self.files if f.name == self.weights_file)
        return next(f for f in self.files if f.name != "config.json")

    def url(self, file: str, base_url: str | None = None) -> str | None:
        """Download URL of ``file`` (``base_url`` argument > ``$PSYSC_MODEL_BASE_URL`` > the entry's default).

        ``None`` when no mirror is given and the entry has no direct-download host (files placed by hand).
        """
        base = base_url or os.environ.get(ENV_BASE_URL)
        if not base:
            if self.file_url is not None:
                return self.file_url.format(file=file)
            base = self.base_url
            if not base:
                return None
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


#: scGPT: public S3 copy of the whole-human folder (CZI scGenePT; ``aws s3 sync --no-sign-request
#: s3://czi-scgenept-public/models/pretrained/scgpt``), over HTTPS
SCGPT_HUMAN_S3_URL = "https://czi-scgenept-public.s3.amazonaws.com/models/pretrained/scgpt/{file}"
#: official Google Drive folders of the scGPT model zoo (bowang-lab/scGPT README); their ids are the "revisions"
_SCGPT_HUMAN_DRIVE = "1oWh_-ZRdhtoGQ2Fw24HP41FgLoomVo-y"
_SCGPT_BRAIN_DRIVE = "1vf1ijfQSk7rGdDGpBntR5bi5g6gNt-Gx"


def _scgpt(name, version, folder, drive_id, files, file_url):
    return ModelEntry(
        name=name, family="scgpt", version=version, folder=folder, revision=drive_id, files=files,
        layers=12, hidden_size=512, n_heads=8, max_length=1200, licence="MIT", base_url=None,
        weights_file="best_model.pt", file_url=file_url,
        manual_source=f"https://drive.google.com/drive/folders/{drive_id}",
    )


def _normalise(name: str) -> str:
    """A registry name as matched: case-insensitive, ``_`` = ``-``, surrounding spaces ignored."""
    return name.strip().lower().replace("_", "-")


class _Registry(dict):
    """The registry: a dict of entries by canonical name whose look-ups also accept other spellings.

    ``REGISTRY["Geneformer-V2-104M"]``, ``"geneformer-v2-104m" in REGISTRY`` and ``REGISTRY.get(...)`` match names
    case-insensitively (``_`` and ``-`` alike) and the upstream folder names of the Geneformer entries
    (``"gf-12L-30M-i2048"``); iteration and ``keys()`` give the canonical names.
    """

    def resolve(self, name) -> str | None:
        """The canonical name of ``name`` (another spelling or a Geneformer folder name), or ``None``."""
        if not isinstance(name, str):
            return None
        if dict.__contains__(self, name):
            return name
        key = _normalise(name)
        for canonical in self:
            if _normalise(canonical) == key:
                return canonical
        for canonical, entry in self.items():
            if entry.family == "geneformer" and _normalise(entry.folder) == key:
                return canonical
        return None

    def __getitem__(self, name) -> ModelEntry:
        canonical = self.resolve(name)
        if canonical is None:
            raise KeyError(name)
        return dict.__getitem__(self, canonical)

    def __contains__(self, name) -> bool:
        return self.resolve(name) is not None

    def get(self, name, default=None):
        canonical = self.resolve(name)
        return default if canonical is None else dict.__getitem__(self, canonical)

    def suggest(self, name) -> list[str]:
        """Canonical names close to ``name`` (for a "did you mean" in errors)."""
        if not isinstance(name, str):
            return []
        spellings = {_normalise(n): n for n in self}
        spellings.update({_normalise(e.folder): n for n, e in self.items() if e.family == "geneformer"})
        close = difflib.get_close_matches(_normalise(name), list(spellings), n=3, cutoff=0.6)
        return list(dict.fromkeys(spellings[c] for c in close))


def _unknown_model_hint(name) -> str:
    close = REGISTRY.suggest(name)
    did_you_mean = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return (f"{did_you_mean}known models: {', '.join(sorted(REGISTRY))} (see psysc.models.available()), and "
            "'scvi' in psysc.tl.embed, which trains an scVI model on the data")


#: Every downloadable model, by name. Sizes and sha256 are the Git-LFS pointers of the official files.
#: Look-ups accept any case and the Geneformer folder names (:class:`_Registry`).
REGISTRY: _Registry = _Registry({
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
        # CELLxGENE Census scVI (homo sapiens, Census LTS 2024-07-01): SCVI on the 8,000 Census HVGs (Ensembl IDs),
        # 2 layers x 512 hidden, latent 50; ~7.1 M parameters. No sha256 or size is published: the hash is recorded
        # at the first download and checked on every later use. The encoder does not use the batch
        # (encode_covariates=False). Layers/hidden: encoder; n_heads: none; max_length: input genes.
        ModelEntry(name="scvi-census", family="scvi", version="SCVI", folder="homo_sapiens", revision="2024-07-01",
                   files=(RemoteFile("model.pt"),), layers=2, hidden_size=512, n_heads=0, max_length=8000,
                   licence="CC-BY-4.0", base_url=CENSUS_SCVI_BASE_URL),
        # scGPT whole-human and brain (bowang-lab/scGPT, MIT): vocab.json / args.json sha256 verified from the real
        # files (psysc ships them, see psysc/models/scgpt/data). The whole-human best_model.pt sha256 and size come
        # from a third-party audit note in the public code index, not from the authors (none published); the brain
        # best_model.pt has no known hash: recorded at its first use and checked from then on.
        _scgpt("scgpt-human", "human", "scGPT_human", _SCGPT_HUMAN_DRIVE, (
            RemoteFile("best_model.pt", "6cb5d451ab5c4b33eb673adbe4fddc61d2389df1b89b7651a9fe2e557572b922",
                       205_385_258),
            RemoteFile("vocab.json", "acca93d114ca62c3f0f50debbd23e8c87f0714f4737764454f6b2b13f2e8580f", 1_317_639),
            RemoteFile("args.json", "c18e075e018140cb8b2d9029387b9de26607a5ce6a8ccabd6ead70cd76b95d60", 1_300),
        ), SCGPT_HUMAN_S3_URL),
        _scgpt("scgpt-brain", "brain", "scGPT_brain", _SCGPT_BRAIN_DRIVE, (
            RemoteFile("best_model.pt"),
            RemoteFile("vocab.json", "ee2b2c90158eedb97c2318e49abaaed0a02c6fdf7e3f7ca6a821906413c4d2a4", 1_317_639),
            RemoteFile("args.json", "3595103bfdfcff6194254787b79292e206c94893a9d25bb323c6220bbe3003ea", 1_043),
        ), None),
    )
})


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``, in any case (a clear error with the close names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in psysc's model registry; {_unknown_model_hint(name)}") from None


def check_model_ref(name_or_path) -> Path | None:
    """Validate ``model=``: a registry name (returns ``None``) or a checkpoint directory (returns its path).

    A registry name matches in any case and as the upstream Geneformer folder name (``"Geneformer-V2-104M"``),
    but an existing directory of that spelling is the directory (the exact registry name is always the
    registry model). Raises ``ValueError`` naming the close and the registered models for anything else.
    """
    if isinstance(name_or_path, str) and dict.__contains__(REGISTRY, name_or_path):
        return None
    directory = Path(name_or_path).expanduser()
    if not directory.exists() and isinstance(name_or_path, str) and name_or_path in REGISTRY:
        return None
    if not directory.exists():
        raise ValueError(
            f"{str(name_or_path)!r} is neither a model name nor an existing directory (config.json + "
            f"model.safetensors); {_unknown_model_hint(str(name_or_path))}"
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


def file_kind_problem(path: str | os.PathLike) -> str | None:
    """Why a model file cannot be the kind of file its name says, or None (a check of its first bytes).

    Empty, a web page (a proxy's login page or a server's error page served in its place), a ``.json`` that holds
    no JSON object, a ``.pt`` / ``.bin`` / ``.pth`` / ``.ckpt`` that ``torch.save`` did not write (neither a zip
    archive nor a pickle), a ``.safetensors`` without its JSON header.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        return "is empty"
    if head.lstrip()[:1] == b"<":
        return (f"is a web page or an XML document (it starts with {head.lstrip()[:32]!r}), e.g. a proxy's login "
                "page or a server's error page served instead of the file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            _json_object(path)
        except ValueError as err:
            return str(err)
    elif suffix in (".pt", ".bin", ".pth", ".ckpt"):
        if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
            return "is not a file written by torch.save (neither a zip archive nor a pickle)"
    elif suffix == ".safetensors" and (len(head) < 9 or head[8:9] != b"{"):
        return "is not a safetensors file (no JSON header after its first 8 bytes)"
    return None


def cache_hint(path: str | os.PathLike) -> str:
    """'; delete <folder> ...' when ``path`` lies in a model folder of psysc's cache, else ''."""
    for resolve in (os.path.abspath, os.path.realpath):  # as given first: a model folder may be a link
        file, models = Path(resolve(path)), Path(resolve(Path(settings.cachedir) / "models"))
        if models in file.parents and file.parent != models:
            break
    else:
        return ""
    folder = models / file.relative_to(models).parts[0]
    return (f"; it is a file of psysc's model cache: delete the folder {folder} (its files and the sha256 recorded "
            "at first use) to download the model again")


def _json_object(path: Path) -> dict:
    """The JSON object in ``path``, or a ``ValueError`` whose message says what the file is instead."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError both are
        raise ValueError(f"is not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"holds a JSON {type(obj).__name__}, not a JSON object")
    return obj


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in a model's file, or a ``ValueError`` that names the file (and the cache folder to delete)."""
    path = Path(path)
    try:
        return _json_object(path)
    except ValueError as err:
        raise ValueError(f"{path} {err}{cache_hint(path)}") from None


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


def _manual_help(entry: ModelEntry, file: RemoteFile, url: str | None, path: Path, expected: str | None) -> str:
    check = f"sha256 {expected}" if expected else "its sha256 is recorded at first use"
    corrupt = path.with_name(path.name + ".corrupt")
    moved = f" The copy that was there before, which did not match, is at {corrupt}." if corrupt.exists() else ""
    layout = ("config.json + model.safetensors or pytorch_model.bin" if entry.family == "geneformer"
              else " + ".join(f.name for f in entry.files))
    where = url if url is not None else f"{file.name} from {entry.manual_source or 'the upstream release'}"
    recorded = "" if file.sha256 is not None or expected is None else (
        f" No sha256 of {file.name} is published: {expected} is the one recorded at its first use, in "
        f"{path.parent / RECORD_NAME}. If that first copy was not the official file, delete {RECORD_NAME} and the "
        "official copy you place is recorded instead.")
    return (
        f"To use it offline, download {where} elsewhere and place it at {path} ({check}), "
        f"or set ${ENV_BASE_URL} (or base_url=) to a mirror with the layout <base>/<revision>/<folder>/<file>, "
        f"or use a local directory in the official layout ({layout}) instead of the name: "
        f"psysc.models.load('/path/to/{entry.folder}'), or psysc run --model /path/to/{entry.folder}.{moved}{recorded}"
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
    corrupt = path.with_name(path.name + ".corrupt")
    if path.exists():
        digest = sha256sum(path)
        if expected is None:
            # placed by hand (or record lost) and no published hash: trust it now, verify it from now on
            problem = file_kind_problem(path)
            if problem is not None:
                raise ValueError(
                    f"{path} {problem}; it is not the official {file.name} of {entry.name} and its sha256 was not "
                    f"recorded. Delete it or replace it with the official file. "
                    + _manual_help(entry, file, entry.url(file.name, base_url), path, None))
            folder.mkdir(parents=True, exist_ok=True)
            _write_record(folder, file.name, digest)
            logger.info("recorded sha256 %s of %s (no published hash; verified on every later use)", digest, path)
            return path
        if digest == expected:
            corrupt.unlink(missing_ok=True)  # a good copy is back (placed by hand): the one set aside can go
            return path
        logger.warning(
            "cached file %s is corrupt (sha256 %s, expected %s%s): moved to %s (deleted once a good copy is "
            "downloaded) and downloading it again", path, digest, expected,
            "" if file.sha256 else f", recorded at its first use in {RECORD_NAME}", corrupt.name,
        )
        os.replace(path, corrupt)

    import pooch
    import requests

    url = entry.url(file.name, base_url)
    if url is None:  # no direct-download host (e.g. Google Drive only): never fetch a web page instead
        raise DownloadError(
            f"{entry.name}: {file.name} is not in the cache and has no direct-download URL (the official files are "
            f"on {entry.manual_source or 'an upstream page'}). It is needed at {path}. "
            + _manual_help(entry, file, None, path, expected)
        )
    key = f"{entry.name}/{file.name}"
    pup = pooch.create(
        path=folder.parent,
        base_url="",
        registry={key: f"sha256:{expected}" if expected else None},
        urls={key: url},
        allow_updates=False,
    )
    logger.info("downloading %s to %s", url, path)
    pooch_logger = pooch.get_logger()  # its own "Downloading file ..." line, on stderr whatever psysc's verbosity
    pooch_level = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
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
        fix = "" if file.sha256 else (
            f" If the recorded sha256 is the wrong one (the first copy was not the official file), delete "
            f"{folder / RECORD_NAME} and load the model again: the sha256 of the file downloaded then is recorded.")
        raise ValueError(
            f"the file downloaded from {url} does not match {where} ({expected}); it was not kept. "
            f"The server holds other bytes than expected (pooch: {err}).{fix}"
        ) from None
    finally:
        pooch_logger.setLevel(pooch_level)
    if expected is None:
        problem = file_kind_problem(fetched)
        if problem is not None:
            Path(fetched).unlink()
            raise DownloadError(
                f"the file downloaded from {url} {problem}; it was not kept and no sha256 was recorded. "
                + _manual_help(entry, file, url, path, None)
            )
        digest = sha256sum(fetched)
        _write_record(folder, file.name, digest)
        logger.info("recorded sha256 %s of %s (no published hash; verified on every later use)", digest, fetched)
    corrupt.unlink(missing_ok=True)
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
        try:
            fetch_file(entry, file, base_url=base_url)
        except DownloadError as err:
            folder = model_dir(entry.name)
            later = [f.name for f in entry.files[entry.files.index(file) + 1:] if not (folder / f.name).exists()]
            if not later:
                raise
            raise DownloadError(f"{err} The model also needs {', '.join(later)}, not in {folder} either.") from None
    return model_dir(entry.name)


def is_cached(name: str) -> bool:
    """Whether every file of model ``name`` is in the cache (present; hashes are checked on use)."""
    entry = get_entry(name)
    folder = model_dir(entry.name)
    return all((folder / f.name).is_file() for f in entry.files)


def available():
    """The pretrained models psysc can download and load.

    Returns
    -------
    pandas.DataFrame
        :class:`pandas.DataFrame` with one row per model: ``name``, ``family``, ``version``, ``layers``,
        ``hidden_size``, ``n_heads``, ``max_length`` (tokens; both ``<NA>`` for scVI, which encodes whole expression
        vectors), ``size_mb`` (weights, 10^6 bytes), ``licence``, ``revision`` (pinned upstream commit) and
        ``cached`` (all files already in ``settings.cachedir``).

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
        tokenless = e.family == "scvi"  # an encoder of whole expression vectors: no attention heads, no tokens
        rows.append(
            {
                "name": e.name,
                "family": e.family,
                "version": e.version,
                "layers": e.layers,
                "hidden_size": e.hidden_size,
                "n_heads": None if tokenless else e.n_heads,
                "max_length": None if tokenless else e.max_length,
                "size_mb": round(size / 1e6, 1) if size is not None else float("nan"),
                "licence": e.licence,
                "revision": e.revision,
                "cached": is_cached(e.name),
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"n_heads": "Int64", "max_length": "Int64"})
