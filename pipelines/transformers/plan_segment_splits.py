"""Dynamic block: one item per (segment value, walk-forward split), for one model per segment."""

from converge.training import steps

if "transformer" not in globals():
    from mage_ai.data_preparation.decorators import transformer


@transformer
def plan_segment_splits(training_set, *args, **kwargs):
    if not kwargs.get("segment"):
        raise ValueError("the regional pipeline needs the `segment` variable (a column name)")
    return steps.plan(training_set, kwargs)
