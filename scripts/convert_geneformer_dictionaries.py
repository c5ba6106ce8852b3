"""Convert the 8 official Geneformer dictionaries (pickles) into the plain files psysc ships.

Run once from the repository root; the package itself never reads pickles nor the source files::

    python scripts/convert_geneformer_dictionaries.py SOURCE_DIR

Inputs: ``<data>/models/geneformer/{token_dictionary,gene_median_dictionary,gene_name_id_dict,
ensembl_mapping_dict}_{gc30M,gc104M}.pkl`` (byte-identical to the official files of ctheodoris/Geneformer,
Apache-2.0) and ``<data>/MANIFEST.tsv``, whose sha256 (= the official Git LFS oid) each file must match.

The pickles are read with a *restricted* unpickler: the only globals it resolves are ``numpy.dtype`` and
numpy's scalar reconstructor (``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar``), which is
all these dictionaries need (they hold ``np.int16`` / ``np.float64`` values). Anything else (``os.system``,
``builtins.eval``, ...) is refused before it is called. The result is then type-checked: a ``dict`` with
``str`` keys and ``int`` / ``float`` / ``str`` values.

Outputs (in ``src/psysc/models/geneformer/data/``), all deterministic:

- ``<official stem>.tsv.gz``: one header line, then ``key<TAB>value`` in the pickle's own (insertion) order.
  Token ids are written as decimal integers, medians as ``repr(float)`` (shortest string that round-trips
  to the identical float64), strings as they are. Gzip level 9, ``mtime=0``, no file name in the header.
- ``SOURCES.json``: for each file, the official name, HF revision, source sha256, number of entries and
  sha256 of the converted file (the package checks the latter when it loads a file).
- ``tests/data/geneformer_dict_sample.json``: 50 evenly spaced entries of each dictionary with the source
  sha256, so the tests can compare exact values without reading the pickles.

``README.md`` of the data folder (provenance, licence) is written by hand.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import pickle
import sys
from pathlib import Path

#: Hugging Face revision of ctheodoris/Geneformer the dictionaries are pinned to.
HF_REVISION = "05fcbeb8a27d49e0a7a4349152202ee2c1cbfd28"
#: model version -> Genecorpus suffix of the official file names
CORPORA = {"V1": "gc30M", "V2": "gc104M"}
#: dictionary stem -> (header of the TSV, value type)
DICTIONARIES = {
    "token_dictionary": (("gene", "token_id"), int),
    "gene_median_dictionary": (("ensembl_id", "median"), float),
    "gene_name_id_dict": (("gene_name", "ensembl_id"), str),
    "ensembl_mapping_dict": (("key", "ensembl_id"), str),
}
N_SAMPLE = 50

_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }
)


def _numpy_scalar_reconstructor():
    try:  # numpy >= 2
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ``numpy.dtype`` and numpy's scalar reconstructor.

    Every other global (the only way a pickle can reach a callable) raises ``pickle.UnpicklingError``
    before anything is called; persistent ids are refused by the base class.
    """

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a Geneformer dictionary")
        import numpy as np

        return np.dtype if name == "dtype" else _numpy_scalar_reconstructor()


def restricted_loads(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _plain(value, kind: type):
    """Convert a numpy scalar / Python value to a plain ``kind``, refusing anything unexpected."""
    import numpy as np

    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"expected str, got {type(value).__name__}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, float | np.floating):
        raise TypeError(f"expected a float, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out) or out != value:
        raise ValueError(f"median {value!r} is not a finite float64")
    return out


def load_dictionary(data: bytes, kind: type) -> dict:
    """Restricted-unpickle one dictionary and check its types; values become plain ``kind``."""
    obj = restricted_loads(data)
    if type(obj) is not dict:
        raise TypeError(f"expected a dict, got {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"expected str keys, got {type(key).__name__}")
        if any(c in key for c in "\t\r\n"):
            raise ValueError(f"key {key!r} contains a tab or newline")
        value = _plain(value, kind)
        if isinstance(value, str) and any(c in value for c in "\t\r\n"):
            raise ValueError(f"value {value!r} contains a tab or newline")
        out[key] = value
    return out


def _format(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def to_tsv_gz(header: tuple[str, str], d: dict) -> bytes:
    """Deterministic gzip'd TSV (mtime=0, no file name) of ``d`` in its insertion order."""
    text = "\t".join(header) + "\n" + "".join(f"{k}\t{_format(v)}\n" for k, v in d.items())
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def read_manifest(path: Path) -> dict[str, str]:
    """``file -> sha256`` of the source folder's manifest (MANIFEST.tsv)."""
    with open(path, newline="") as fh:
        return {row["file"]: row["sha256"].lower() for row in csv.DictReader(fh, delimiter="\t")}


def _sample(d: dict, n: int = N_SAMPLE) -> list[list]:
    items = list(d.items())
    if len(items) <= n:
        idx = range(len(items))
    else:  # evenly spaced, first and last included
        idx = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [[items[i][0], items[i][1]] for i in idx]


def convert(data_dir: Path, out_dir: Path, sample_path: Path | None) -> dict:
    """Verify, convert and write all 8 dictionaries; returns the SOURCES.json content."""
    manifest = read_manifest(data_dir / "MANIFEST.tsv")
    out_dir.mkdir(parents=True, exist_ok=True)
    sources: dict = {
        "origin": "ctheodoris/Geneformer (Hugging Face), Apache-2.0",
        "hf_revision": HF_REVISION,
        "converted_by": "scripts/convert_geneformer_dictionaries.py",
        "files": {},
    }
    samples: dict = {"hf_revision": HF_REVISION, "dictionaries": {}}
    for version, corpus in CORPORA.items():
        for stem, (header, kind) in DICTIONARIES.items():
            name = f"{stem}_{corpus}"
            rel = f"models/geneformer/{name}.pkl"
            if rel not in manifest:
                raise SystemExit(f"{rel} is not listed in MANIFEST.tsv")
            raw = (data_dir / rel).read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest != manifest[rel]:
                raise SystemExit(f"sha256 mismatch for {rel}: {digest} != {manifest[rel]} (MANIFEST.tsv)")
            d = load_dictionary(raw, kind)  # the very bytes that were hashed
            blob = to_tsv_gz(header, d)
            (out_dir / f"{name}.tsv.gz").write_bytes(blob)
            sources["files"][f"{name}.tsv.gz"] = {
                "version": version,
                "official_file": f"{name}.pkl",
                "source_sha256": digest,
                "source_bytes": len(raw),
                "n_entries": len(d),
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
            }
            samples["dictionaries"][name] = {
                "official_file": f"{name}.pkl",
                "source_sha256": digest,
                "n_entries": len(d),
                "sample": _sample(d),
            }
            print(f"{name}: {len(d):,} entries -> {name}.tsv.gz ({len(blob):,} bytes)")
    (out_dir / "SOURCES.json").write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
    if sample_path is not None:
        sample_path.parent.mkdir(parents=True, exist_ok=True)
        sample_path.write_text(json.dumps(samples, indent=1) + "\n")
    return sources


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder with MANIFEST.tsv and models/geneformer/*.pkl")
    parser.add_argument("--out", type=Path, default=root / "src/psysc/models/geneformer/data")
    parser.add_argument("--sample", type=Path, default=root / "tests/data/geneformer_dict_sample.json")
    args = parser.parse_args(argv)
    convert(args.data_dir, args.out, args.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
