"""The model loader's parser process: after the first load it fetches, verifies, parses and checks
artifacts itself, so a reload runs no botocore, parsing or scoring in the serving process.

Why: the serving process's GIL belongs to its requests. Moving the work must not change what is
refused or how: the same exceptions with the same messages as the same steps in-process, and only
storage faults count against the S3 breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from types import SimpleNamespace

import pytest

from converge.checkout import CORPUS
from converge.artifacts import ArtifactStore, model_key, sha256_hex
from converge.errors import ArtifactIntegrityError, ArtifactNotFound, StorageUnavailable
from converge.mojo import CorruptMojoError, load_mojo
from converge.resilience import CircuitBreaker, CircuitOpenError
from converge.serving.holder import LoadedModel
from converge.serving.loader import ModelLoader
from converge.serving.validation_sample import SampleError, ValidationMismatch, compare_sample
from converge.serving.testing import read_rows, trainer_predictions
from converge.stack.procs import free_port

pytestmark = pytest.mark.integration

OUTAGES = (StorageUnavailable, ConnectionError, OSError, TimeoutError)


@pytest.fixture(scope="module")
def binomial():
    mojo = (CORPUS / "binomial.zip").read_bytes()
    rows = read_rows(CORPUS / "binomial.input.csv", 8)
    return mojo, rows, trainer_predictions(mojo, rows)


def upload(settings, data: bytes, rows, predictions, *, sha256: str | None = None):
    """Store ``data`` as a fresh version; a registry entry's fields, without the registry."""
    name, version = f"loader-{uuid.uuid4().hex[:8]}", 1
    artifact = ArtifactStore(settings).put(model_key(name, version), data)
    return SimpleNamespace(
        name=name,
        version=version,
        artifact_uri=artifact.uri,
        sha256=sha256 or artifact.sha256,
        validation_sample={"rows": rows, "predictions": predictions},
    )


class ServingSideStore(ArtifactStore):
    """Counts the fetches made in this process. The loader hands only a plain ``ArtifactStore``'s
    settings to its parser process; any other store keeps fetching where it is."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.fetched = 0

    def get(self, *args, **kwargs):
        self.fetched += 1
        return super().get(*args, **kwargs)


@contextlib.contextmanager
def loader_with_breaker(store, failure_threshold: int = 1):
    """A loader with its own S3 breaker (opened by ``failure_threshold`` outages); its parser
    process is stopped afterwards."""
    breaker = CircuitBreaker(
        "s3", failure_threshold=failure_threshold, reset_timeout_s=60, failures=OUTAGES
    )
    loader = ModelLoader(store, breaker)
    try:
        yield loader, breaker
    finally:
        loader.close()


async def test_reload_checks_and_replica_loads_fetch_in_the_parser_process(
    stack_settings, binomial
):
    mojo, rows, predictions = binomial
    mv = await asyncio.to_thread(upload, stack_settings, mojo, rows, predictions)
    store = ArtifactStore(stack_settings)
    served_fetches: list[str] = []
    original_get = store.get
    store.get = lambda uri, **kw: served_fetches.append(uri) or original_get(uri, **kw)
    with loader_with_breaker(store) as (loader, breaker):
        # The reload function: everything in the parser process, from the first check on.
        loaded, checked = await loader.load_checked(mv)
        assert checked == len(rows)
        assert served_fetches == []
        assert compare_sample(loaded, mv.validation_sample) == len(rows)
        # A predict replica after its first load: the parser process fetches as well.
        again = await loader.load(mv)
        assert served_fetches == []
        assert again.version == mv.version and again.sha256 == mv.sha256
        assert compare_sample(again, mv.validation_sample) == len(rows)
        assert breaker.state == "closed"


async def test_a_replicas_first_load_and_other_stores_stay_in_process(stack_settings, binomial):
    mojo, rows, predictions = binomial
    mv = await asyncio.to_thread(upload, stack_settings, mojo, rows, predictions)
    store = ServingSideStore(stack_settings)
    with loader_with_breaker(store) as (loader, breaker):
        first = await loader.load(mv)
        loaded, checked = await loader.load_checked(mv)  # bytes handed to the parser process
        assert store.fetched == 2
        assert checked == len(rows)
        assert compare_sample(first, mv.validation_sample) == len(rows)
        assert compare_sample(loaded, mv.validation_sample) == len(rows)


def in_process(settings, mv) -> BaseException:
    """The same steps in this process with the public APIs: what the parser process must match."""
    try:
        data = ArtifactStore(settings).get(mv.artifact_uri, expected_sha256=mv.sha256)
        model = load_mojo(data)
    except Exception as exc:  # noqa: BLE001 - the reference answer
        return exc
    try:
        compare_sample(LoadedModel("x", 1, "x", model), mv.validation_sample)
    except ValidationMismatch as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - the reference answer
        return SampleError(str(exc))
    raise AssertionError("the reference accepted the artifact")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("sha256-mismatch", ArtifactIntegrityError),
        ("missing", ArtifactNotFound),
        ("cut-in-half", CorruptMojoError),
        ("predictions-differ", ValidationMismatch),
        ("sample-without-rows", ValidationMismatch),
        ("sample-not-scorable", SampleError),
    ],
)
async def test_the_parser_process_refuses_what_the_serving_process_refuses(
    stack_settings, binomial, fault, expected
):
    mojo, rows, predictions = binomial
    data, sha256 = mojo, None
    if fault == "sha256-mismatch":
        sha256 = sha256_hex(b"another artifact")
    elif fault == "cut-in-half":
        data = mojo[: len(mojo) // 2]
    elif fault == "predictions-differ":
        predictions = [dict(p) for p in predictions]
        predictions[3]["p1"] += 1e-6
    elif fault == "sample-without-rows":
        rows, predictions = [], []
    elif fault == "sample-not-scorable":
        rows = [None] * len(rows)  # not records: scoring fails before any comparison
    mv = await asyncio.to_thread(upload, stack_settings, data, rows, predictions, sha256=sha256)
    if fault == "missing":
        mv.artifact_uri = ArtifactStore(stack_settings).uri(model_key(mv.name, 2))
    reference = await asyncio.to_thread(in_process, stack_settings, mv)
    assert type(reference) is expected

    # One failure would open this breaker: none of these faults is the store's.
    with loader_with_breaker(ArtifactStore(stack_settings)) as (loader, breaker):
        with pytest.raises(expected) as refused:
            await loader.load_checked(mv)
        assert str(refused.value) == str(reference)
        assert breaker.state == "closed"


async def test_an_unreachable_store_is_an_outage_for_the_breaker(stack_settings, binomial):
    mojo, rows, predictions = binomial
    mv = await asyncio.to_thread(upload, stack_settings, mojo, rows, predictions)
    down = stack_settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    with loader_with_breaker(ArtifactStore(down), failure_threshold=2) as (loader, breaker):
        for _ in range(2):
            with pytest.raises(StorageUnavailable):
                await loader.load_checked(mv)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await loader.load_checked(mv)
