"""The baseline for the V2 benchmark: a MOJO served the way a KServe user does it today.

KServe's own Python model server (``kserve.ModelServer``) hosts a custom ``kserve.Model`` that
scores with h2o-genmodel in-process through JPype. Run as a script:
``python benchmarks/kserve_mojo_server.py MODEL_NAME MOJO_PATH HTTP_PORT [GRPC_PORT]`` (with a
gRPC port, KServe's own gRPC server is on too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kserve
from kserve import InferOutput, InferRequest, InferResponse


from converge.mojo import load_mojo  # noqa: E402


class GenmodelMojo(kserve.Model):
    """One MOJO, scored by genmodel (EasyPredictModelWrapper through JPype)."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path
        self.mojo: Any = None
        self.load()

    def load(self) -> bool:
        self.mojo = load_mojo(self.path, backend="genmodel")
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        # gRPC hands BYTES tensors over as bytes; genmodel takes levels as text
        columns = {
            tensor.name: [v.decode() if isinstance(v, bytes) else v for v in tensor.data]
            for tensor in payload.inputs
        }
        rows = len(next(iter(columns.values())))
        records = [{name: values[i] for name, values in columns.items()} for i in range(rows)]
        scored = self.mojo.predict_records(records)
        names = list(scored[0]) if scored else ["predict"]
        outputs = []
        for name in names:
            data = [row[name] for row in scored]
            datatype = "BYTES" if name == "predict" and self.mojo.classes else "FP64"
            outputs.append(InferOutput(name=name, shape=[rows], datatype=datatype, data=data))
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=outputs
        )


if __name__ == "__main__":
    name, path, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    grpc_port = int(sys.argv[4]) if len(sys.argv) > 4 else None
    kserve.ModelServer(
        http_port=port, workers=1, enable_grpc=grpc_port is not None, grpc_port=grpc_port or 8081
    ).start([GenmodelMojo(name, path)])
