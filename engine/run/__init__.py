"""The run around a training: the job `train.py` drives, its settings and flags, and the
callbacks that make a run survive and report (checkpoints and resume, NaN and signal guards,
early stopping, TensorBoard, progress, plots), with device choice and determinism; and how
every program writes its files (`writes`), makes and removes directories (`directories`) and
replaces one as a whole (`swap`): whole or not at all, never through a link."""
