"""Experiments over many trainings: hyperparameter search (grid or random) with stratified
cross-validation, its results store and its ranking chart: `python -m engine.experiments.search`."""
