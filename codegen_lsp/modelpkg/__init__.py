"""The model package contract shared by the exporter (training side) and the engine (runtime)."""

from .errors import (
    CorruptFile,
    IONameMismatch,
    ManifestInvalid,
    MissingFile,
    ModelPackageError,
    NoVariant,
    PackageNotFound,
    UnknownKind,
    UnsupportedVersion,
)
from .locate import default_model_dir, resolve_model_dir
from .manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    FileEntry,
    IONames,
    Manifest,
    PromptConvention,
    Provenance,
    Quantization,
    SpecialTokens,
    Variant,
)
from .package import ModelPackage, check_io_names, file_entries, load_package, sha256_file, write_manifest

__all__ = [
    "FORMAT_VERSION", "MANIFEST_FILE", "CorruptFile", "FileEntry", "IONameMismatch", "IONames",
    "Manifest", "ManifestInvalid", "MissingFile", "ModelPackage", "ModelPackageError", "NoVariant",
    "PackageNotFound", "PromptConvention", "Provenance", "Quantization", "SpecialTokens",
    "UnknownKind", "UnsupportedVersion", "Variant", "check_io_names", "default_model_dir", "file_entries",
    "load_package", "resolve_model_dir", "sha256_file", "write_manifest",
]
