"""Model artifacts in S3-compatible storage (MinIO, SeaweedFS), verified by sha256.

The sha256 is computed on upload, stored as object metadata and returned to the caller for the
registry; on download the bytes are hashed again and compared to what the caller expects (the
registry's value) and to the stored metadata. A mismatch raises, so a corrupt or swapped MOJO
never gets loaded.

Downloads go through :class:`~converge.s3_reader.S3Reader` (a signed GET on the standard library),
everything else through boto3, imported on first use: a function that only downloads (predict,
reload) never loads boto3. Both are synchronous: call these methods from a worker thread
(``asyncio.to_thread``) in async code.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import TypeAdapter, ValidationError

from converge.contracts import ModelName
from converge.errors import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    InvalidKey,
    StorageUnavailable,
)
from converge.s3_reader import S3Reader
from converge.settings import Settings, get_settings

__all__ = [
    "Artifact",
    "ArtifactIntegrityError",
    "ArtifactNotFound",
    "ArtifactStore",
    "InvalidKey",
    "StorageUnavailable",
    "model_key",
    "validate_key",
]

SHA256_METADATA = "sha256"  # stored as x-amz-meta-sha256
_MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MODEL_NAME = TypeAdapter(ModelName)
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored object: ``uri`` is ``s3://bucket/key``."""

    uri: str
    bucket: str
    key: str
    sha256: str
    size: int


def validate_key(key: str) -> str:
    """Reject keys that could escape their prefix or confuse a path-based store.

    No ``..`` anywhere, no leading ``/``, no backslash, no control characters, no empty or ``.``
    segments; at most 1024 bytes of UTF-8.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("key: must be a non-empty string")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise InvalidKey(f"key: longer than {_MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidKey(f"key {key[:80]!r}: absolute paths are not allowed")
    if "\\" in key:
        raise InvalidKey(f"key {key[:80]!r}: backslashes are not allowed")
    if _CONTROL.search(key):
        raise InvalidKey(f"key {key[:80]!r}: control characters are not allowed")
    if ".." in key:
        raise InvalidKey(f"key {key[:80]!r}: '..' is not allowed")
    if any(part in ("", ".") for part in key.split("/")):
        raise InvalidKey(f"key {key[:80]!r}: empty or '.' path segments are not allowed")
    return key


def model_key(name: str, version: int, filename: str = "model.zip") -> str:
    """``models/<name>/<version>/<filename>``, every part validated."""
    try:
        _MODEL_NAME.validate_python(name)
    except ValidationError as exc:
        raise InvalidKey(f"name {name!r}: {exc.errors()[0]['msg']}") from None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidKey(f"version {version!r}: must be an integer >= 1")
    if not _FILENAME.match(filename) or ".." in filename:
        raise InvalidKey(f"filename {filename!r}: letters, digits, '.', '_', '-' only")
    return validate_key(f"models/{name}/{version}/{filename}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Put and get verified objects in one bucket (``settings.s3_bucket``)."""

    model_key = staticmethod(model_key)

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.bucket = self.settings.s3_bucket
        self._client: Any = None
        self._lock = threading.Lock()
        self._bucket_ready = False

    @property
    def client(self) -> Any:
        """The boto3 client, created on first use (thread-safe: boto3 clients are)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    s = self.settings
                    self._client = boto3.session.Session().client(
                        "s3",
                        endpoint_url=s.s3_endpoint_url,
                        aws_access_key_id=s.s3_access_key.get_secret_value(),
                        aws_secret_access_key=s.s3_secret_key.get_secret_value(),
                        region_name=s.s3_region,
                        config=Config(
                            signature_version="s3v4",
                            s3={"addressing_style": "path"},
                            connect_timeout=5,
                            read_timeout=60,
                            retries={"mode": "standard", "max_attempts": 3},
                            # Older MinIO / SeaweedFS reject the default CRC trailers of new botocore.
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required",
                        ),
                    )
        return self._client

    @cached_property
    def reader(self) -> S3Reader:
        """Downloads: light to import and to create, unlike the boto3 client."""
        s = self.settings
        return S3Reader(
            s.s3_endpoint_url,
            s.s3_access_key.get_secret_value(),
            s.s3_secret_key.get_secret_value(),
            s.s3_region,
            connect_timeout_s=min(5.0, s.s3_read_timeout_s),
            read_timeout_s=s.s3_read_timeout_s,
        )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{validate_key(key)}"

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent)."""
        if self._bucket_ready:
            return
        from botocore.exceptions import ClientError

        with _storage_errors(f"bucket {self.bucket}"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in _NOT_FOUND:
                    raise
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except ClientError as create_exc:
                    if _code(create_exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
        self._bucket_ready = True

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> Artifact:
        """Upload ``data`` under ``key`` with its sha256 in the object metadata."""
        key = validate_key(key)
        digest = sha256_hex(data)
        self.ensure_bucket()
        with _storage_errors(f"put {key}", key):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={SHA256_METADATA: digest},
            )
        return Artifact(
            uri=f"s3://{self.bucket}/{key}", bucket=self.bucket, key=key, sha256=digest, size=len(data)
        )

    def get(self, uri_or_key: str, *, expected_sha256: str | None = None) -> bytes:
        """Download and verify; raises ArtifactNotFound, ArtifactIntegrityError."""
        bucket, key = self._locate(uri_or_key)
        data, metadata = self.reader.get(bucket, key)
        digest = sha256_hex(data)
        stored = metadata.get(SHA256_METADATA)
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise ArtifactIntegrityError(
                f"{key}: sha256 {digest} does not match the expected {expected_sha256.lower()}"
            )
        if stored and stored.lower() != digest:
            raise ArtifactIntegrityError(
                f"{key}: sha256 {digest} does not match the stored metadata {stored.lower()}"
            )
        return data

    def head(self, uri_or_key: str) -> Artifact:
        """Size and stored sha256 without downloading; raises ArtifactNotFound."""
        bucket, key = self._locate(uri_or_key)
        with _storage_errors(f"head {key}", key):
            response = self.client.head_object(Bucket=bucket, Key=key)
        return Artifact(
            uri=f"s3://{bucket}/{key}",
            bucket=bucket,
            key=key,
            sha256=(response.get("Metadata") or {}).get(SHA256_METADATA, ""),
            size=int(response.get("ContentLength", 0)),
        )

    def exists(self, uri_or_key: str) -> bool:
        try:
            self.head(uri_or_key)
        except ArtifactNotFound:
            return False
        return True

    def delete(self, uri_or_key: str) -> None:
        bucket, key = self._locate(uri_or_key)
        with _storage_errors(f"delete {key}", key):
            self.client.delete_object(Bucket=bucket, Key=key)

    def _locate(self, uri_or_key: str) -> tuple[str, str]:
        if uri_or_key.startswith("s3://"):
            bucket, _, key = uri_or_key[len("s3://") :].partition("/")
            if not _BUCKET.match(bucket):
                raise InvalidKey(f"uri {uri_or_key[:80]!r}: bad bucket name")
            return bucket, validate_key(key)
        if "://" in uri_or_key:
            raise InvalidKey(f"uri {uri_or_key[:80]!r}: only s3:// URIs or bare keys")
        return self.bucket, validate_key(uri_or_key)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _storage_errors:
    """Map botocore failures: missing object -> ArtifactNotFound, transport/5xx -> Unavailable."""

    def __init__(self, what: str, key: str | None = None) -> None:
        self.what, self.key = what, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None:
            return False
        # Only boto3 calls run in here, so botocore is loaded already.
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = _code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _NOT_FOUND or status == 404:
                raise ArtifactNotFound(f"{self.what}: not found ({code or status})") from exc
            if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "InternalError"}:
                raise StorageUnavailable(f"{self.what}: storage error {code or status}") from exc
            return False
        if isinstance(exc, (BotoCoreError, OSError)):
            raise StorageUnavailable(f"{self.what}: {type(exc).__name__}: {exc}") from exc
        return False
