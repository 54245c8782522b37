"""The committed gRPC modules are what scripts/protos generates from our .proto today."""

from __future__ import annotations

import shutil
from pathlib import Path

from grpc_tools import protoc
from converge.checkout import REPO

SRC = REPO / "src"
PACKAGE = Path("converge/serving/v2grpc")


def test_generated_modules_match_the_proto(tmp_path):
    (tmp_path / PACKAGE).mkdir(parents=True)
    protos = sorted(p.name for p in (SRC / PACKAGE).glob("*.proto"))
    for proto in protos:
        shutil.copy(SRC / PACKAGE / proto, tmp_path / PACKAGE)
    status = protoc.main(
        ["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         *(str(PACKAGE / proto) for proto in protos)]
    )  # fmt: skip
    assert status == 0
    for proto in protos:
        for name in (proto.replace(".proto", "_pb2.py"), proto.replace(".proto", "_pb2_grpc.py")):
            assert (tmp_path / PACKAGE / name).read_text() == (SRC / PACKAGE / name).read_text(), name
