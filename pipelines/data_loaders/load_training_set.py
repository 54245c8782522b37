"""Load the training set: the feature store as of the cut-off (or `training_file`)."""

from converge.training import steps

if "data_loader" not in globals():
    from mage_ai.data_preparation.decorators import data_loader
if "test" not in globals():
    from mage_ai.data_preparation.decorators import test


@data_loader
def load_training_set(*args, **kwargs):
    return steps.load(kwargs)


@test
def test_output(output, *args) -> None:
    assert output is not None and len(output) > 0, "the training set is empty"
