"""The application, the top ring: the job `train.py` drives (`job`), the directories it checks
once before TensorFlow loads (`preflight`), resuming from a checkpoint (`resuming`), and the side-by-side comparison with Keras that
`--compare_keras` runs instead (`side_by_side`). It may import every ring below it; nothing
imports it but the programs (`train.py`, `bench/`) and the tests."""
