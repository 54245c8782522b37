"""Reduce: final fit up to the cut-off, MOJO to object storage, registry row, `model.published`."""

from converge.training import steps

if "data_exporter" not in globals():
    from mage_ai.data_preparation.decorators import data_exporter


@data_exporter
def publish_model(split_results, training_set, *args, **kwargs):
    return steps.publish(split_results, training_set, kwargs)
