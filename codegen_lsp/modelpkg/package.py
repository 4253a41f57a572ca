"""Loading, verifying and writing model package directories (no torch, no onnxruntime)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    CorruptFile,
    IONameMismatch,
    ManifestInvalid,
    MissingFile,
    NoVariant,
    PackageNotFound,
    UnsupportedVersion,
)
from .manifest import (
    FORMAT_NAME,
    MANIFEST_FILE,
    SUPPORTED_VERSIONS,
    FieldError,
    FileEntry,
    Manifest,
    Provider,
    Variant,
    from_dict,
)

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelPackage:
    """A loaded, checked package: its directory and manifest."""

    root: Path
    manifest: Manifest

    def path(self, rel: str) -> Path:
        return self.root / rel

    def variant(self, provider: Provider) -> Variant:
        v = self.manifest.variant_for(provider)
        if v is None:
            have = ", ".join(f"{x.name} ({x.provider})" for x in self.manifest.variants) or "none"
            raise NoVariant(self.root, f"no variant for provider '{provider}' (package has: {have})")
        return v

    def choose_variant(self, provider: Provider, name: str | None = None) -> Variant:
        """The variant called ``name`` when one is asked for, else the provider's default."""
        if name is None:
            return self.variant(provider)
        for v in self.manifest.variants:
            if v.name == name:
                return v
        raise NoVariant(self.root, f"no variant named '{name}'")

    def verify(self, full: bool = False) -> None:
        """Check every listed file exists with the recorded size; with ``full`` also its sha256."""
        for entry in self.manifest.files:
            p = self.root / entry.path
            if not p.is_file():
                raise MissingFile(self.root, f"missing file '{entry.path}' (re-run `make model` or re-export)")
            size = p.stat().st_size
            if size != entry.size:
                raise CorruptFile(
                    self.root,
                    f"'{entry.path}' is {size} bytes, manifest says {entry.size} (truncated or replaced file)",
                )
            if full:
                digest = sha256_file(p)
                if digest != entry.sha256:
                    raise CorruptFile(self.root, f"'{entry.path}' sha256 {digest[:12]}… does not match manifest")


def load_package(root: str | os.PathLike[str], verify_hashes: bool = False) -> ModelPackage:
    """Read and check a package directory. Raises a specific ``ModelPackageError`` subclass."""
    root = Path(root).expanduser()
    mpath = root / MANIFEST_FILE
    if not root.is_dir():
        raise PackageNotFound(root, "directory does not exist (build the default with `make model`)")
    if not mpath.is_file():
        raise PackageNotFound(root, f"no {MANIFEST_FILE} in the directory")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalid(root, f"{MANIFEST_FILE} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestInvalid(root, f"{MANIFEST_FILE} must hold a JSON object")
    if data.get("format") != FORMAT_NAME:
        raise ManifestInvalid(root, f"format is {data.get('format')!r}, expected {FORMAT_NAME!r}")
    version = data.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            root, f"format_version {version!r} is not supported (this runtime reads {list(SUPPORTED_VERSIONS)})"
        )
    try:
        manifest = from_dict(Manifest, data)
    except FieldError as exc:
        raise ManifestInvalid(root, str(exc)) from exc
    problem = _inconsistent(manifest)
    if problem:
        raise ManifestInvalid(root, problem)
    listed = {f.path for f in manifest.files}
    needed = [manifest.tokenizer] + [p for v in manifest.variants
                                     for p in [*v.graph_files().values(), *v.external_data]]
    unlisted = [p for p in needed if p not in listed]
    if unlisted:
        raise ManifestInvalid(root, f"files used but not listed in 'files': {unlisted}")
    pkg = ModelPackage(root, manifest)
    pkg.verify(full=verify_hashes)
    return pkg


def _inconsistent(m: Manifest) -> str | None:
    """Field values that type-check but could only fail later, at generation time."""
    if not m.special_tokens.eos:
        return "special_tokens.eos is empty: generation could never end"
    bad = [t for t in [*m.special_tokens.eos, m.special_tokens.bos, m.special_tokens.pad]
           if t is not None and not 0 <= t < m.vocab_size]
    if bad:
        return f"special token ids {bad} are outside the vocabulary (vocab_size {m.vocab_size})"
    if m.vocab_size < 1 or m.context_length < 2 or m.num_layers < 1:
        return f"vocab_size {m.vocab_size}, context_length {m.context_length}, num_layers {m.num_layers}: not a model"
    if not m.variants:
        return "no variants"
    for i, v in enumerate(m.variants):
        if not v.graph_files():
            return f"variants[{i}] ('{v.name}') names no graph"
        if any(not isinstance(p, str) or not p for p in v.graphs.values()):
            return f"variants[{i}].graphs: every entry must be a file path"
        if v.graphs and m.format_version < 2:
            return f"variants[{i}].graphs needs format_version 2"
    return None


def check_io_names(
    pkg_root: object, manifest: Manifest, variant: Variant, inputs: Iterable[str], outputs: Iterable[str]
) -> None:
    """Compare a graph's actual I/O names (read by the engine or exporter) with the manifest's promise."""
    want_in = set(variant.io.input_names(manifest.num_layers))
    want_out = set(variant.io.output_names(manifest.num_layers))
    have_in, have_out = set(inputs), set(outputs)
    missing_in = sorted(want_in - have_in)
    missing_out = sorted(want_out - have_out)
    if missing_in or missing_out:
        raise IONameMismatch(
            pkg_root,
            f"variant '{variant.name}': graph lacks inputs {missing_in[:4]} outputs {missing_out[:4]}"
            f" (graph has inputs {sorted(have_in)[:6]}…)",
        )


def file_entries(root: Path, rel_paths: Iterable[str]) -> list[FileEntry]:
    """Size and hash each file, for writing a manifest."""
    out = []
    for rel in sorted(set(rel_paths)):
        p = root / rel
        out.append(FileEntry(path=rel, size=p.stat().st_size, sha256=sha256_file(p)))
    return out


def write_manifest(root: Path, manifest: Manifest) -> Path:
    """Write atomically so a crashed export never leaves a half-written manifest."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (MANIFEST_FILE + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    os.replace(tmp, root / MANIFEST_FILE)
    return root / MANIFEST_FILE
