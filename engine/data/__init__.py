"""The data a model trains on: IDX files read with their headers checked (`idx`), TensorFlow
Datasets fed from local IDX files (`tfds_idx`), loading a data set by name (`loading`), and the
held-out validation split (`validation`)."""
