"""What every program uses, the lowest ring: a training run's settings and flags, the one `main`
boundary (`program`), the callbacks that make a run survive and report (checkpoints and resume,
NaN and signal guards, early stopping, TensorBoard, progress, plots), with device choice,
determinism and quiet logs; and how every program writes its files (`writes`), makes and
removes directories (`directories`) and replaces one as a whole (`swap`): whole or not at all,
never through a link. It imports only the core; the job that puts it together is `engine.app.job`."""
