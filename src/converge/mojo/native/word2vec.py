"""Word2Vec (WordEmbedding): a word's vector, as genmodel's ``Word2VecMojoModel.transform0`` looks
it up; a missing or unknown word has none (every column missing).

The word column is read as a categorical whose levels are the vocabulary (``with_vocabulary``),
so rows reach the scorer as vocabulary indices; the columns are named ``C1``.. as H2O's
``transform(aggregate_method="NONE")`` names them.
"""

from __future__ import annotations

import dataclasses
import struct

from .._numpy import numpy_when_used
from ..errors import CorruptMojoError
from ._base import NativeScorer

np = numpy_when_used(__name__)


def _vocabulary(archive, info) -> list[str]:
    """``readtext("vocabulary", true)``: one word a line, trimmed, escaped newlines restored."""
    words = [line.replace("\\n", "\n").strip()
             for line in archive.read_text("vocabulary").split("\n")]
    if words and words[-1] == "" and len(words) == int(info.require("vocab_size")) + 1:
        words.pop()  # the file's final newline
    return words


def with_vocabulary(archive, info):
    """``info`` with the word column's levels set to the vocabulary."""
    domains = list(info.domains)
    domains[0] = _vocabulary(archive, info)
    return dataclasses.replace(info, domains=domains)


class Word2VecScorer(NativeScorer):
    def __init__(self, info, archive) -> None:
        super().__init__(info)
        self.size = int(info.require("vec_size"))
        words = int(info.require("vocab_size"))
        blob = archive.read_bytes("vectors")
        if len(blob) != 4 * words * self.size:
            raise CorruptMojoError(f"vectors hold {len(blob)} bytes, not {words}x{self.size} "
                                   "floats", info.source)
        flat = struct.unpack(f">{words * self.size}f", blob)  # Java's float, widened exactly
        vectors = [list(flat[w * self.size:(w + 1) * self.size]) for w in range(words)]
        vocabulary = _vocabulary(archive, info)
        # a word listed twice keeps its last vector (genmodel's HashMap.put)
        last = {word: vectors[i] for i, word in enumerate(vocabulary)}
        self.vectors = [last[word] for word in vocabulary]
        self.missing = [float("nan")] * self.size

    def output_columns(self) -> list[str]:
        return [f"C{i + 1}" for i in range(self.size)]

    def rows_without_numpy(self) -> bool:
        return True

    def score_row(self, row, offset):
        code = row[0]
        return list(self.missing if code != code else self.vectors[int(code)])

    def score(self, raw, offset):
        table = np.vstack([np.asarray(self.vectors, dtype=np.float64), [self.missing]])
        codes = raw[:, 0]
        index = np.where(np.isnan(codes), len(self.vectors), np.nan_to_num(codes)).astype(np.intp)
        return table[index]
