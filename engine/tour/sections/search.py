# %% [markdown]
# ## 11. Choosing hyperparameters: grid search with cross-validation
#
# Which width, which learning rate? Try them, and score each candidate on data the model did not
# train on. One validation split gives a noisy score; k-fold cross-validation trains k models,
# each validated on a different k-th of the images and trained on the rest, and averages the k
# scores (`engine.experiments.cross_validation`, stratified folds). A grid search tries every
# combination (`engine.experiments.search_space.candidates`); `python -m engine.experiments.search`
# is the same search from the command line, and writes the same table and chart. Run again, it
# resumes: the trials already in `results.json` are skipped (delete the folder to search afresh).

# %%
import os

from engine.experiments import hyperparameter_search, search_space
from engine.tour import course

images, labels = course.training_set(3000)
space = {"hidden": [(64,), (256, 128)], "learning_rate": [0.01, 0.1], "batch_size": [32], "epochs": [2]}
trials = search_space.candidates(space, strategy="grid")  # 2 x 2 = 4 candidates
output_dir = course.path("search")
setup = {"dataset": "fashion_mnist", "train_subset": len(labels), "folds": 3, "seed": course.SEED, "mode": "graph"}
ranked = hyperparameter_search.search(trials, images, labels, 10, output_dir, setup, folds=3, seed=course.SEED)

# %% [markdown]
# The ranking chart (`ranking.png`): mean validation accuracy over the folds, the bar's whisker
# one standard deviation of the fold scores. Candidates closer than their spread are a tie.

# %%
course.show(os.path.join(output_dir, "ranking.png"))
