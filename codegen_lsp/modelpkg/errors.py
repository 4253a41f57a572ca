"""Errors raised when a model package cannot be used; each names the package and what to do."""

from __future__ import annotations


class ModelPackageError(Exception):
    """Base class: the package at ``path`` cannot be loaded."""

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"model package {path}: {message}")
        self.path = path
        self.detail = message


class PackageNotFound(ModelPackageError):
    """No directory or no manifest.json where a package was expected."""


class ManifestInvalid(ModelPackageError):
    """manifest.json is not valid JSON or misses/mistypes a required field."""


class UnsupportedVersion(ModelPackageError):
    """The manifest's format_version is newer (or older) than this runtime understands."""


class MissingFile(ModelPackageError):
    """A file listed in the manifest is absent."""


class CorruptFile(ModelPackageError):
    """A file listed in the manifest has the wrong size (e.g. a truncated graph) or hash."""


class IONameMismatch(ModelPackageError):
    """The graph's inputs/outputs do not match the names the manifest promises."""


class NoVariant(ModelPackageError):
    """The package has no variant for the requested execution provider."""


class UnknownKind(ModelPackageError):
    """The manifest's ``kind`` names a model kind this runtime has no engine for."""
