"""Artifacts in a real S3-compatible server (SeaweedFS): sha256 verification, unsafe keys, faults."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from converge.artifacts import SHA256_METADATA, ArtifactStore, model_key, validate_key
from converge.errors import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    InvalidKey,
    StorageUnavailable,
)
from converge.settings import Settings

BUCKET = "converge-test-artifacts"
UNSAFE_KEYS = [
    "../x",
    "/abs",
    "a/../../b",
    "models/..",
    "a\\b",
    "a\x00b",
    "tab\there",
    "a//b",
    "./a",
    "",
    "k" * 1025,
]


# -- key rules (no server needed) ------------------------------------------------------------
@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_model_key_layout_and_validation() -> None:
    assert model_key("churn", 3) == "models/churn/3/model.zip"
    assert ArtifactStore.model_key("churn", 3, "report.html") == "models/churn/3/report.html"
    for name, version, filename in [
        ("../churn", 1, "model.zip"),
        ("Churn", 1, "model.zip"),
        ("churn", 0, "model.zip"),
        ("churn", True, "model.zip"),
        ("churn", 1, "../model.zip"),
        ("churn", 1, "a/b.zip"),
    ]:
        with pytest.raises(InvalidKey):
            model_key(name, version, filename)


# -- against the server -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(s3_server) -> ArtifactStore:
    # A bucket of its own (created on first put), so other tests' objects are never touched.
    settings = Settings(
        s3_endpoint_url=s3_server.url,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_region=s3_server.region,
        s3_bucket=BUCKET,
    )
    return ArtifactStore(settings)


@pytest.mark.integration
def test_put_get_round_trip_with_sha256(store: ArtifactStore) -> None:
    data = os.urandom(300_000)
    art = store.put(model_key("churn", 1), data, content_type="application/zip")
    assert art.uri == f"s3://{BUCKET}/models/churn/1/model.zip"
    assert art.sha256 == hashlib.sha256(data).hexdigest() and art.size == len(data)
    assert store.get(art.uri, expected_sha256=art.sha256) == data
    assert store.get(art.key) == data
    head = store.head(art.uri)
    assert head.sha256 == art.sha256 and head.size == len(data)


@pytest.mark.integration
def test_wrong_expected_sha256_is_an_integrity_error(store: ArtifactStore) -> None:
    art = store.put(model_key("churn", 2), b"the real model")
    with pytest.raises(ArtifactIntegrityError):
        store.get(art.uri, expected_sha256=hashlib.sha256(b"another model").hexdigest())


@pytest.mark.integration
def test_object_replaced_behind_our_back_fails_the_stored_checksum(store: ArtifactStore) -> None:
    key = model_key("churn", 3)
    store.put(key, b"good bytes")
    # Someone overwrites the object but leaves the old checksum in the metadata.
    store.client.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=b"tampered bytes",
        Metadata={SHA256_METADATA: hashlib.sha256(b"good bytes").hexdigest()},
    )
    with pytest.raises(ArtifactIntegrityError):
        store.get(key)


@pytest.mark.integration
def test_missing_object_and_unsafe_keys(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get(model_key("never", 1))
    assert not store.exists(model_key("never", 1))
    for key in ("../x", "/abs", "a/../../b"):
        with pytest.raises(InvalidKey):
            store.put(key, b"x")
        with pytest.raises(InvalidKey):
            store.get(key)
    with pytest.raises(InvalidKey):
        store.get(f"s3://{BUCKET}/a/../../b")
    with pytest.raises(InvalidKey):
        store.get("file:///etc/passwd")


@pytest.mark.integration
def test_server_down_is_storage_unavailable_then_recovers(store: ArtifactStore, s3_server) -> None:
    art = store.put(model_key("churn", 9), b"survives a restart")
    s3_server.stop()
    with pytest.raises(StorageUnavailable):
        store.get(art.uri, expected_sha256=art.sha256)
    s3_server.start()
    assert store.get(art.uri, expected_sha256=art.sha256) == b"survives a restart"


@pytest.mark.integration
@pytest.mark.parametrize("key", ["models/a b/1/model.zip", "models/ünï/1/m+x=y,z;@.zip", "x/%41~/'!*()"])
def test_signed_get_of_keys_that_need_encoding(store: ArtifactStore, key: str) -> None:
    """Downloads are signed by converge's own reader: the server recomputes the signature over the
    encoded path, so a key with spaces, non-ASCII or reserved characters checks the encoding."""
    data = os.urandom(1000)
    art = store.put(key, data)
    assert store.get(art.uri, expected_sha256=art.sha256) == data


@pytest.mark.integration
def test_wrong_secret_is_storage_unavailable_naming_the_answer(store: ArtifactStore) -> None:
    art = store.put(model_key("churn", 11), b"secret model")
    wrong = ArtifactStore(
        store.settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    )
    with pytest.raises(StorageUnavailable, match="403"):
        wrong.get(art.uri)


@pytest.mark.integration
def test_a_download_does_not_import_boto3(store: ArtifactStore) -> None:
    """The predict and reload functions only download: that must not load boto3 (most of their
    cold start when it did)."""
    art = store.put(model_key("churn", 12), b"fetched in a fresh process")
    s = store.settings
    script = (
        "import sys\n"
        "from converge.artifacts import ArtifactStore\n"
        "from converge.settings import Settings\n"
        f"store = ArtifactStore(Settings(s3_endpoint_url={s.s3_endpoint_url!r},"
        f" s3_access_key={s.s3_access_key.get_secret_value()!r},"
        f" s3_secret_key={s.s3_secret_key.get_secret_value()!r},"
        f" s3_region={s.s3_region!r}, s3_bucket={s.s3_bucket!r}))\n"
        f"assert store.get({art.uri!r}, expected_sha256={art.sha256!r}) == b'fetched in a fresh process'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
