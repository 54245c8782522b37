"""Read the files of a MOJO from a zip (path or bytes) or an unpacked folder, safely.

Zip entries are checked before anything is decompressed: absolute paths and ``..`` components are
rejected, and both the declared and the actual decompressed sizes are capped (zip bombs).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path, PurePosixPath

from .errors import CorruptMojoError

#: Cap on the total decompressed size of one MOJO; the largest AutoML MOJOs are a few hundred MB.
MAX_TOTAL_BYTES = int(os.environ.get("CONVERGE_MOJO_MAX_BYTES", str(2 << 30)))
#: Cap on the compression ratio of one entry (real MOJOs stay far below; deflate tops out near 1000:1).
MAX_RATIO = 200
_CHUNK = 1 << 20


def _check_name(name: str, source: str) -> str:
    """Reject names that could escape the model root; return the normalised posix name."""
    if "\\" in name or "\x00" in name:
        raise CorruptMojoError(f"unsafe entry name {name!r}", source)
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise CorruptMojoError(f"unsafe entry name {name!r} (absolute or '..')", source)
    return name


class MojoArchive:
    """A read-only view of the model root (optionally a sub-folder prefix, for ensembles)."""

    def __init__(self, source: str, files: dict[str, object], reader, prefix: str = "") -> None:
        self.source = source
        self._files = files  # name -> handle understood by reader
        self._reader = reader
        self.prefix = prefix

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def open(cls, path_or_bytes) -> MojoArchive:
        """Open a zip path, a folder path or the bytes of a zip."""
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            return cls._from_zip(io.BytesIO(bytes(path_or_bytes)), "<bytes>")
        path = Path(os.fspath(path_or_bytes))
        if path.is_dir():
            return cls._from_dir(path)
        if not path.exists():
            raise CorruptMojoError("no such file or folder", str(path))
        try:
            return cls._from_zip(open(path, "rb"), str(path))
        except OSError as e:
            raise CorruptMojoError(f"cannot read: {e}", str(path)) from e

    @classmethod
    def _from_zip(cls, fh, source: str) -> MojoArchive:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise CorruptMojoError(f"not a zip file ({e})", source) from e
        files: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in zf.infolist():
            name = _check_name(info.filename, source)
            if info.is_dir() or name.startswith("__MACOSX/"):
                continue
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise CorruptMojoError(
                    f"declared uncompressed size exceeds {MAX_TOTAL_BYTES} bytes (zip bomb?)", source
                )
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise CorruptMojoError(
                    f"entry {name!r} has compression ratio above {MAX_RATIO}:1 (zip bomb?)", source
                )
            files[name] = info
        budget = [MAX_TOTAL_BYTES]

        def read(info: zipfile.ZipInfo) -> bytes:
            out = bytearray()
            try:
                with zf.open(info) as f:
                    while True:
                        chunk = f.read(_CHUNK)
                        if not chunk:
                            break
                        out += chunk
                        if len(out) > info.file_size or len(out) > budget[0]:
                            raise CorruptMojoError(
                                f"entry {info.filename!r} inflates beyond its declared size", source
                            )
            except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as e:
                raise CorruptMojoError(f"cannot read entry {info.filename!r}: {e}", source) from e
            budget[0] -= len(out)
            return bytes(out)

        return cls(source, files, read)

    @classmethod
    def _from_dir(cls, root: Path) -> MojoArchive:
        root_resolved = root.resolve()
        files: dict[str, Path] = {}
        for dirpath, _dirs, names in os.walk(root):
            for n in names:
                full = Path(dirpath) / n
                rel = full.relative_to(root).as_posix()
                if rel.startswith("__MACOSX/"):
                    continue
                files[rel] = full

        def read(full: Path) -> bytes:
            resolved = full.resolve()
            if root_resolved not in resolved.parents:
                raise CorruptMojoError(f"{full.name!r} links outside the model folder", str(root))
            if resolved.stat().st_size > MAX_TOTAL_BYTES:
                raise CorruptMojoError(f"{full.name!r} is larger than {MAX_TOTAL_BYTES} bytes", str(root))
            return resolved.read_bytes()

        return cls(str(root), files, read)

    # -- access -------------------------------------------------------------------------------
    def sub(self, prefix: str) -> MojoArchive:
        """The same archive seen from a nested model folder (StackedEnsemble sub-models)."""
        _check_name(prefix, self.source)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return MojoArchive(self.source, self._files, self._reader, self.prefix + prefix)

    def exists(self, name: str) -> bool:
        return (self.prefix + name) in self._files

    def read_bytes(self, name: str) -> bytes:
        key = self.prefix + name
        handle = self._files.get(key)
        if handle is None:
            raise CorruptMojoError(f"missing entry {key!r}", self.source)
        return self._reader(handle)

    def read_text(self, name: str) -> str:
        try:
            return self.read_bytes(name).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CorruptMojoError(f"{self.prefix + name!r} is not UTF-8: {e}", self.source) from e

    def names(self, under: str = "") -> list[str]:
        """Entry names below ``under`` relative to this view's prefix."""
        start = self.prefix + under
        n = len(self.prefix)
        return [k[n:] for k in self._files if k.startswith(start)]


def zlib_error():
    import zlib

    return zlib.error
