"""The candidates of a hyperparameter search: a grid, or random draws.

Grid search (scikit-learn's `ParameterGrid`) tries every combination of the listed values:
3 hidden sizes x 3 batch sizes x 3 rates is 27 trials, and each added hyperparameter
multiplies the count. Random search (`ParameterSampler`) draws `n_iter` combinations instead;
when only some hyperparameters matter — the usual case — it tries more distinct values of
those in the same number of trials (Bergstra & Bengio, 2012).

A learning rate can be drawn from a range rather than a list: log-uniformly, so that 0.001 to
0.01 is as likely as 0.01 to 0.1 — what matters about a rate is its order of magnitude.
Drawn rates are rounded to 3 significant digits, to read well in the table.
"""

from typing import Dict, List, Optional, Sequence

from scipy.stats import loguniform
from sklearn.model_selection import ParameterGrid, ParameterSampler


def candidates(space: Dict[str, list], strategy: str = "grid", n_iter: int = 10, seed: int = 0,
               learning_rate_range: Optional[Sequence[float]] = None) -> List[Dict]:
    """The trials to run: every combination of `space` (grid) or `n_iter` draws from it (random).

    Args:
      space: {"hidden": [(128,), (256, 128)], "batch_size": [32], "epochs": [5], "learning_rate": [0.01, 0.1]}.
      strategy: "grid" or "random".
      n_iter, seed: random search's number of draws and their seed (the same seed, the same draws).
      learning_rate_range: random search only: (low, high) to draw the rate from, instead of its list.
    """
    if strategy == "grid":
        return list(ParameterGrid(space))
    if learning_rate_range is not None:
        space = {**space, "learning_rate": loguniform(*learning_rate_range)}
    drawn = ParameterSampler(space, n_iter, random_state=seed)
    return [{**params, "learning_rate": float(f"{params['learning_rate']:.3g}")} for params in drawn]
