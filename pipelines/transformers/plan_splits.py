"""Dynamic block: one item per walk-forward split; every split is checked for leakage here."""

from converge.training import steps

if "transformer" not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def plan_splits(training_set, *args, **kwargs):
    # A dynamic block returns [items, metadata]; Mage starts one `train_split` run per item.
    return steps.plan(training_set, kwargs)
