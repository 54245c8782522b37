"""The Open Inference Protocol's data plane, the same for REST and gRPC: find the model, decode
the tensors, score through the predict service (cache and metrics as for predict), encode.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from converge.errors import NotFound
from converge.serving.v2_codec import (
    EXTRA_OUTPUTS,
    InferenceError,
    Parsed,
    Prediction,
    decode_inputs,
    encode_outputs,
    input_specs,
    output_specs,
)


@functools.lru_cache(maxsize=16)
def categorical(model: Any) -> frozenset[str]:
    """The model's categorical features, computed once per loaded model, not per request."""
    domains = model.domains
    return frozenset(n for n in model.feature_names if domains.get(n))


def _labels(loaded: Any) -> list[str] | None:
    """Class labels of a loaded model (``LoadedModel.classes`` pairs each with its output column)."""
    return [label for label, _ in loaded.classes] if loaded.classes else None


def _columns(loaded: Any) -> list[str] | None:
    """The output columns of a model without classes or a single value (KMeans, PCA...)."""
    names = list(getattr(loaded.model, "output_names", None) or [])
    if loaded.classes or names in ([], ["predict"]):
        return None
    return names


async def resolve(runtime: Any, name: str, version: str | None) -> Any:
    """The loaded model that answers for ``name`` (and ``version``: any registered one)."""
    pinned: int | None = None
    if version:
        if not version.isdigit() or int(version) < 1:
            raise InferenceError(f"model_version: {version[:40]!r} is not a version number")
        pinned = int(version)
    service = await runtime.predict_service()
    try:
        return await service.resolve(name, pinned)
    except NotFound as exc:
        raise NotFound(f"not found: {str(exc).removeprefix('model: ')}") from None


def metadata(loaded: Any) -> dict[str, Any]:
    """The model's real inputs (names and types from the MOJO) and outputs."""
    model = loaded.model
    return {
        "name": loaded.name,
        "versions": [str(loaded.version)],
        "platform": f"h2o-mojo-{model.algorithm.lower()}",
        "inputs": [s.model_dump() for s in input_specs(model.feature_names, categorical(model))],
        "outputs": [s.model_dump() for s in output_specs(_labels(loaded), _columns(loaded))],
    }


async def infer(runtime: Any, name: str, version: str | None, parsed: Parsed) -> dict[str, Any]:
    """Decode, score (cache and metrics as for predict) and encode; names the version that scored."""
    from converge.contracts import PredictInstance, PredictRequest
    from converge.serving.observability import PREDICT_LATENCY

    started = time.perf_counter()
    loaded = await resolve(runtime, name, version)
    records = decode_inputs(parsed, loaded.model.feature_names, categorical(loaded.model))
    service = await runtime.predict_service()
    # Names are the model's own features and values were type-checked by decode_inputs.
    asked = [out for out in EXTRA_OUTPUTS if out in (parsed.outputs or ())]
    native = PredictRequest.model_construct(
        model=loaded.name,
        version=loaded.version,
        instances=[PredictInstance.model_construct(features=r, entity_id=None) for r in records],
        strict=None,
        explain="contributions" in asked,
        leaf_assignment="leaf_assignment" in asked,
        leaf_node_ids="leaf_node_ids" in asked,
        calibrated="calibrated_probabilities" in asked,
        reconstruct="reconstruction" in asked,
    )
    result = await service.predict_with(loaded, native)
    predictions = result["predictions"]
    outputs = encode_outputs(
        [Prediction(p["label"], p.get("probabilities"), p.get("outputs"), {a: p[a] for a in asked})
         for p in predictions],
        _labels(loaded),
        parsed.outputs,
        _columns(loaded),
        {a: list(predictions[0][a]) for a in asked} if predictions else None,
    )
    PREDICT_LATENCY.observe(time.perf_counter() - started)
    answer: dict[str, Any] = {
        "model_name": result["model"],
        "model_version": str(result["version"]),
        "outputs": outputs,
    }
    if parsed.id is not None:
        answer["id"] = parsed.id
    return answer
