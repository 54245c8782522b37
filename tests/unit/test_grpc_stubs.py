"""The committed gRPC modules are what scripts/protos generates from our .proto today."""

from __future__ import annotations

import shutil
from pathlib import Path

from grpc_tools import protoc

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = Path("converge/serving/v2grpc")


def test_generated_modules_match_the_proto(tmp_path):
    (tmp_path / PACKAGE).mkdir(parents=True)
    shutil.copy(SRC / PACKAGE / "grpc_predict_v2.proto", tmp_path / PACKAGE)
    status = protoc.main(
        ["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         str(PACKAGE / "grpc_predict_v2.proto")]
    )  # fmt: skip
    assert status == 0
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py"):
        assert (tmp_path / PACKAGE / name).read_text() == (SRC / PACKAGE / name).read_text(), name
