"""Typed errors for MOJO loading and scoring; each names the file and the reason."""

from __future__ import annotations


class MojoError(Exception):
    """Base class: something about a MOJO (or input to it) prevents a correct answer."""

    def __init__(self, reason: str, source: str | None = None) -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason)


class CorruptMojoError(MojoError):
    """The archive or one of its files is malformed, truncated or unsafe (zip bomb, ``../``)."""


class UnsupportedMojoError(MojoError):
    """The MOJO is valid but this backend cannot score it (algorithm, version or option)."""


class BackendUnavailableError(MojoError):
    """A backend's runtime (JVM, h2o.jar, daimojo package or license) is missing."""


class InvalidInputError(MojoError, ValueError):
    """A row cannot be converted (wrong type, unparseable number, unknown level when strict)."""
