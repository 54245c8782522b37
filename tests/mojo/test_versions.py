"""Tree MOJO versions 1.00 and 1.10, which no fixture has: a 1.30 GBM rewritten in the old format.

Only the large-bitset header differs in the bytes (``u16 bitoff, u16 nbytes`` instead of
``u16 bitoff, i32 nbits``), so every tree is re-serialised with its subtree sizes recomputed and
``mojo_version`` is set back. genmodel then applies its own 1.00/1.10 rules (out-of-bitset levels go
left in 1.00, no domain check before 1.20) and the native scorer must agree.
"""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from converge.mojo import load_mojo
from converge.reference import GenmodelReference


def _downgrade_tree(buf: bytes) -> bytes:
    def node(pos: int) -> tuple[bytes, int]:
        node_type = buf[pos]
        col = struct.unpack_from("<H", buf, pos + 1)[0]
        if col == 0xFFFF:
            return buf[pos : pos + 7], pos + 7
        nadir = buf[pos + 3]
        p = pos + 4
        payload = b""
        if nadir != 1:
            equal = node_type & 0x0C
            if equal in (0, 8):
                payload, p = buf[p : p + 4], p + 4
            else:
                bitoff, nbits = struct.unpack_from("<Hi", buf, p)
                nbytes = ((nbits - 1) >> 3) + 1
                payload = struct.pack("<HH", bitoff, nbytes) + buf[p + 6 : p + 6 + nbytes]
                p += 6 + nbytes
        lmask = node_type & 0x33
        if lmask == 48:
            left, p = buf[p : p + 4], p + 4
            size_field = b""
        else:
            p += (lmask & 3) + 1
            left, p = node(p)
            size = len(left)
            code, fmt = (0, "<B") if size < 256 else (1, "<H") if size < 65535 else (3, "<i")
            node_type = (node_type & ~0x03) | code
            size_field = struct.pack(fmt, size)
        if (node_type & 0xC0) == 0xC0:
            right, p = buf[p : p + 4], p + 4
        else:
            right, p = node(p)
        head = bytes([node_type]) + buf[pos + 1 : pos + 4]
        return head + payload + size_field + left + right, p

    out, end = node(0)
    assert end == len(buf)
    return out


def _old_format_gbm(titanic_zip, version: str, out_path, rewrite: bool = True):
    """The titanic ensemble's GBM as a standalone MOJO in the ``version`` tree format."""
    with zipfile.ZipFile(titanic_zip) as zin:
        prefix = next(n.rsplit("model.ini", 1)[0] for n in zin.namelist()
                      if n.startswith("models/GBM/") and n.endswith("/model.ini"))
        with zipfile.ZipFile(out_path, "w") as zout:
            for info in zin.infolist():
                if not info.filename.startswith(prefix) or info.is_dir():
                    continue
                name = info.filename[len(prefix):]
                data = zin.read(info)
                if not rewrite:
                    pass
                elif name.startswith("trees/") and name.endswith(".bin") and "_aux" not in name:
                    data = _downgrade_tree(data)
                elif name.startswith("trees/") and version == "1.00":
                    continue  # aux files came with 1.10
                elif name == "model.ini":
                    text = data.decode()
                    old = next(ln for ln in text.splitlines() if ln.startswith("mojo_version"))
                    data = text.replace(old, f"mojo_version = {version}").encode()
                zout.writestr(name, data)
    return out_path


@pytest.fixture(scope="module")
def jvm():
    from converge.mojo.backends.genmodel import _jvm
    from converge.mojo.errors import BackendUnavailableError

    try:
        return _jvm()
    except BackendUnavailableError as e:
        pytest.skip(f"genmodel backend unavailable: {e}")


@pytest.mark.parametrize("version", ["1.00", "1.10"])
def test_old_tree_formats_score_like_genmodel(version, corpus_dir, corpus_loader, tmp_path, jvm):
    path = _old_format_gbm(corpus_dir / "binomial_titanic.zip", version, tmp_path / "gbm.zip")
    native = load_mojo(path, backend="native")
    ref = GenmodelReference(path)  # genmodel run directly
    assert native.mojo_version == float(version)
    recs = corpus_loader("binomial_titanic").records()
    a, b = native.predict_raw(recs), ref.raw(recs)
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # every level code of every categorical, through the encoded path too
    X = np.tile(np.nan, (400, len(native.feature_names)))
    for j, name in enumerate(native.feature_names):
        dom = native.domains[name]
        X[:, j] = np.arange(400) % len(dom) if dom else np.linspace(-5, 100, 400)
    old = native.predict_numpy(X)
    np.testing.assert_allclose(old, ref.score0(X), rtol=0, atol=1e-12)
    # the rules really differ from the 1.30 original on these rows, so the test can tell them apart
    current = load_mojo(_old_format_gbm(corpus_dir / "binomial_titanic.zip", "1.30",
                                        tmp_path / "same.zip", rewrite=False), backend="native")
    assert (current.predict_numpy(X) != old).any()
