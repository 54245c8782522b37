"""The prediction cache: keys (:mod:`.keys`), the look-aside cache (:mod:`.lookaside`), the
commands it needs from Redis (:mod:`.commands`) and the small client that sends them (:mod:`.resp`).
"""

from converge.cache.commands import CacheCommands, RedisPyCommands
from converge.cache.keys import KEY_PREFIX, cache_key, canonical_json, features_digest
from converge.cache.lookaside import PredictionCache

__all__ = [
    "KEY_PREFIX",
    "CacheCommands",
    "PredictionCache",
    "RedisPyCommands",
    "cache_key",
    "canonical_json",
    "features_digest",
]
