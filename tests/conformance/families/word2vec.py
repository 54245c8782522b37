"""Word2Vec (WordEmbedding): each row's word vector C1..Cn, missing for missing or unknown words;
genmodel's API answers (PredictCsv cannot print the category)."""

from case import Case

_PARAMS = {"vec_size": 6, "min_word_freq": 1, "epochs": 3, "window_size": 3}


def _train(h2o, frame):
    """Word2Vec trains on the frame alone (no x or y)."""
    from h2o.estimators import H2OWord2vecEstimator

    model = H2OWord2vecEstimator(**_PARAMS)
    model.train(training_frame=frame)
    return model


CASES = [
    Case(name="word2vec_skipgram", estimator="H2OWord2vecEstimator", params=_PARAMS,
         dataset="sentences", train=_train),
]
