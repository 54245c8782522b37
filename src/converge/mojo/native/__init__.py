"""Native scorers, one module per algorithm (NumPy for batches; plain Python and the compiled
kernels for one row); ``build_scorer`` picks one from ``model.ini``."""

from __future__ import annotations

from .._archive import MojoArchive
from .._ini import MojoInfo, read_info
from ..errors import UnsupportedMojoError
from ._base import NativeScorer


def build_scorer(archive: MojoArchive, info: MojoInfo | None = None) -> NativeScorer:
    """The native scorer for the model at ``archive``'s prefix, or UnsupportedMojoError."""
    info = info or read_info(archive)
    algo = info.algo
    if algo == "gbm":
        from .gbm import GbmScorer

        return GbmScorer(info, archive)
    if algo == "drf":
        from .drf import DrfScorer

        return DrfScorer(info, archive)
    if algo == "glm":
        from .glm import GlmScorer

        return GlmScorer(info)
    if algo == "deeplearning":
        if str(info.get("category", "")) == "AutoEncoder":
            from .autoencoder import AutoEncoderScorer

            return AutoEncoderScorer(info)
        from .deeplearning import DeepLearningScorer

        return DeepLearningScorer(info)
    if algo == "xgboost":
        from .xgboost import XGBoostScorer

        return XGBoostScorer(info, archive)
    if algo == "stackedensemble":
        from .ensemble import StackedEnsembleScorer

        return StackedEnsembleScorer(info, archive)
    if algo == "isolationforest":
        from .isolation_forest import IsolationForestScorer

        return IsolationForestScorer(info, archive)
    if algo == "extendedisolationforest":
        from .extended_isolation_forest import ExtendedIsolationForestScorer

        return ExtendedIsolationForestScorer(info, archive)
    if algo == "kmeans":
        from .kmeans import KMeansScorer

        return KMeansScorer(info)
    if algo == "pca":
        from .pca import PcaScorer

        return PcaScorer(info, archive)
    if algo == "glrm":
        from .glrm import GlrmScorer

        return GlrmScorer(info, archive)
    if algo == "coxph":
        from .coxph import CoxPHScorer

        return CoxPHScorer(info, archive)
    if algo == "rulefit":
        from .rulefit import RuleFitScorer

        return RuleFitScorer(info, archive)
    if algo == "upliftdrf":
        from .uplift_drf import UpliftDrfScorer

        return UpliftDrfScorer(info, archive)
    if algo == "targetencoder":
        from .target_encoder import TargetEncoderScorer

        return TargetEncoderScorer(info, archive)
    if algo == "isotonicregression":
        from .isotonic import IsotonicScorer

        return IsotonicScorer(info, archive)
    if algo == "pipeline":
        from .pipeline import MojoPipelineScorer

        return MojoPipelineScorer(info, archive)
    if algo == "gam":
        from .gam import GamScorer

        return GamScorer(info, archive)
    if algo == "word2vec":
        from .word2vec import Word2VecScorer

        return Word2VecScorer(info, archive)
    raise UnsupportedMojoError(f"algorithm {algo or info.get('algorithm')!r}", info.source)


__all__ = ["NativeScorer", "build_scorer"]
