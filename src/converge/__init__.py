"""converge: H2O-3 models as scale-to-zero Knative functions.

The package is the library that the functions in ``functions/`` and the Mage pipelines in
``pipelines/`` share. Each module owns one concept; see the README for the map.
"""

__version__ = "0.1.0"
