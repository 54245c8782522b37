"""Training: walk-forward splits, one H2O job per split, a report, and publishing the MOJO.

The Mage project in ``pipelines/`` calls these modules; :mod:`converge.training.runner` runs that
project headless. Nothing here imports Mage or H2O at module import time.
"""
