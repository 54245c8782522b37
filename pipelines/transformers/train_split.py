"""Dynamic child: train and evaluate one split as one job on the persistent H2O cluster."""

from converge.training import steps

if "transformer" not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def train_split(item, training_set, *args, **kwargs):
    return steps.train(item, training_set, kwargs)
