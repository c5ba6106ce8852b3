"""Convert the official scGPT ``vocab.json`` / ``args.json`` (whole-human and brain) into the files psysc ships.

Run once from the repository root; the package itself never reads the source files::

    python scripts/convert_scgpt_vocab.py SOURCE_DIR

Inputs: ``<data>/models/scgpt/{human,brain}/{vocab.json,args.json}`` (byte copies of the files of the official
scGPT model folders, bowang-lab/scGPT model zoo, MIT) and ``<data>/MANIFEST.tsv``, whose sha256 each file must
match.

Each ``vocab.json`` is a JSON object ``{token: id}`` with 60,697 entries whose ids are exactly ``0..60696``
(checked). The two files differ in bytes (key order) but hold the same mapping (checked and recorded).

Outputs (in ``src/psysc/models/scgpt/data/``), all deterministic:

- ``vocab_<model>.txt.gz``: the tokens in id order, one per line (line ``i`` is the token with id ``i``); gzip level
  9, ``mtime=0``, no file name in the header. No token contains a tab, a newline or leading/trailing spaces
  (checked), so the file round-trips exactly to the official mapping.
- ``args_<model>.json``: the official ``args.json``, byte for byte.
- ``SOURCES.json``: for each file, the official name, the source sha256 and size, the number of entries, the
  sha256 of the shipped file (checked by the package each time it reads one) and the special token ids.

``README.md`` of the data folder (provenance, licence) is written by hand.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

MODELS = ("human", "brain")
SPECIALS = ("<pad>", "<cls>", "<eoc>")


def read_manifest(path: Path) -> dict[str, str]:
    """``file -> sha256`` of the source folder's manifest (MANIFEST.tsv)."""
    with open(path, newline="") as fh:
        return {row["file"]: row["sha256"].lower() for row in csv.DictReader(fh, delimiter="\t")}


def parse_vocab(raw: bytes) -> list[str]:
    """Tokens of an official ``vocab.json`` in id order; refuses anything but a dense ``{str: int}`` mapping."""
    obj = json.loads(raw.decode("utf-8"))
    if type(obj) is not dict:
        raise TypeError(f"vocab.json holds a {type(obj).__name__}, not an object")
    tokens: list[str | None] = [None] * len(obj)
    for tok, idx in obj.items():
        if type(idx) is not int or not 0 <= idx < len(obj):
            raise ValueError(f"vocab.json: id {idx!r} of {tok!r} is not an integer in 0..{len(obj) - 1}")
        if tokens[idx] is not None:
            raise ValueError(f"vocab.json: id {idx} is used twice ({tokens[idx]!r}, {tok!r})")
        if not tok or tok != tok.strip() or any(c in tok for c in "\t\r\n"):
            raise ValueError(f"vocab.json: token {tok!r} is empty or holds whitespace that a line file cannot keep")
        tokens[idx] = tok
    return tokens  # dense by the pigeonhole principle: len(obj) distinct ids in 0..len(obj)-1


def to_txt_gz(tokens: list[str]) -> bytes:
    """Deterministic gzip'd text: one token per line, in id order."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write("".join(t + "\n" for t in tokens).encode("utf-8"))
    return buf.getvalue()


def convert(data_dir: Path, out_dir: Path) -> dict:
    """Verify, convert and write the vocabularies and args of both models; returns the SOURCES.json content."""
    manifest = read_manifest(data_dir / "MANIFEST.tsv")
    out_dir.mkdir(parents=True, exist_ok=True)
    sources: dict = {
        "origin": "bowang-lab/scGPT model zoo (whole-human and brain checkpoint folders), MIT licence",
        "converted_by": "scripts/convert_scgpt_vocab.py",
        "files": {},
    }
    mappings = {}
    for model in MODELS:
        raws = {}
        for name in ("vocab.json", "args.json"):
            rel = f"models/scgpt/{model}/{name}"
            if rel not in manifest:
                raise SystemExit(f"{rel} is not listed in MANIFEST.tsv")
            raw = (data_dir / rel).read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest != manifest[rel]:
                raise SystemExit(f"sha256 mismatch for {rel}: {digest} != {manifest[rel]} (MANIFEST.tsv)")
            raws[name] = (raw, digest)
        tokens = parse_vocab(raws["vocab.json"][0])
        missing = [s for s in SPECIALS if s not in tokens]
        if missing:
            raise SystemExit(f"models/scgpt/{model}/vocab.json lacks the special tokens {missing}")
        mappings[model] = tokens
        blob = to_txt_gz(tokens)
        if parse_vocab(json.dumps({t: i for i, t in enumerate(tokens)}).encode()) != tokens:
            raise SystemExit("round trip failed")  # pragma: no cover - sanity
        (out_dir / f"vocab_{model}.txt.gz").write_bytes(blob)
        sources["files"][f"vocab_{model}.txt.gz"] = {
            "model": model,
            "official_file": "vocab.json",
            "source_sha256": raws["vocab.json"][1],
            "source_bytes": len(raws["vocab.json"][0]),
            "n_entries": len(tokens),
            "special_ids": {s: tokens.index(s) for s in SPECIALS},
            "sha256": hashlib.sha256(blob).hexdigest(),
            "bytes": len(blob),
        }
        args = json.loads(raws["args.json"][0])
        if type(args) is not dict:
            raise SystemExit(f"models/scgpt/{model}/args.json is not a JSON object")
        (out_dir / f"args_{model}.json").write_bytes(raws["args.json"][0])
        sources["files"][f"args_{model}.json"] = {
            "model": model,
            "official_file": "args.json",
            "source_sha256": raws["args.json"][1],
            "source_bytes": len(raws["args.json"][0]),
            "sha256": raws["args.json"][1],
            "bytes": len(raws["args.json"][0]),
        }
        print(f"{model}: {len(tokens):,} tokens -> vocab_{model}.txt.gz ({len(blob):,} bytes); args_{model}.json")
    same = mappings["human"] == mappings["brain"]
    sources["same_mapping_human_brain"] = same
    print(f"human and brain vocabularies hold the same token -> id mapping: {same}")
    (out_dir / "SOURCES.json").write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
    return sources


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", type=Path, help="folder with MANIFEST.tsv and models/scgpt/{human,brain}/")
    p.add_argument("--out", type=Path, default=Path("src/psysc/models/scgpt/data"))
    args = p.parse_args(argv)
    convert(args.data_dir, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
