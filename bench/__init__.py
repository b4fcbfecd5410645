"""How we know scratchflow is fast: pytest-benchmark suites (`python -m pytest bench`) and the
side-by-side report against tf.keras (`python -m bench.report`)."""
