"""Loading an exported model — a SavedModel directory or a .tflite file — as one kind of classifier.

Both formats hold the same function (engine/export.py): float32 images [N, *image_shape] in
[0, 1] -> probabilities [N, num_classes]. Only TensorFlow is needed to run them, not this
project's classes: the SavedModel through its `serving_default` signature, the TFLite model
through `tf.lite.Interpreter`, whose input is resized to the batch at hand (TFLite tensors
have fixed shapes; the converter records the batch axis as -1, resizable).
"""

import os
import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import tensorflow as tf

from engine.errors import DataError
from engine.export import INPUT, LABELS, OUTPUT, SIGNATURE


class Classifier:
    """An exported model, whichever its format.

    Attributes:
      image_shape: one image's shape without the batch axis, e.g. (28, 28).
      class_names: from labels.txt beside the model; the class numbers when there is none.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"--model {self.path} does not exist: pass the export's saved_model directory "
                            "or its model.tflite file")
        if self.path.is_dir():
            self.image_shape, self._predict = _load_saved_model(self.path)
        else:
            self.image_shape, self._predict = _load_tflite(self.path)
        labels = self.path.parent / LABELS
        names = labels.read_text().splitlines() if labels.is_file() else []
        self.class_names = tuple(names) if names else None

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, classes] for float32 images [N, *image_shape] in [0, 1]."""
        probabilities = self._predict(np.asarray(images, np.float32))
        if self.class_names is None:
            self.class_names = tuple(str(index) for index in range(probabilities.shape[1]))
        return probabilities


def _load_saved_model(path: Path) -> Tuple[Tuple[int, ...], callable]:
    if not (path / "saved_model.pb").is_file():
        raise DataError(f"--model {path} is a directory without saved_model.pb, so not a SavedModel: pass the "
                        "export's saved_model directory or its model.tflite file")
    serve = tf.saved_model.load(str(path)).signatures.get(SIGNATURE)
    spec = serve.structured_input_signature[1].get(INPUT) if serve is not None else None
    if spec is None:
        raise DataError(f"--model {path} has no '{SIGNATURE}' signature taking '{INPUT}': "
                        "export it with train.py --export_dir")
    return tuple(spec.shape[1:]), lambda images: serve(**{INPUT: tf.constant(images)})[OUTPUT].numpy()


def _load_tflite(path: Path) -> Tuple[Tuple[int, ...], callable]:
    try:
        with warnings.catch_warnings():  # its successor (ai_edge_litert) is another package; this one still works
            warnings.simplefilter("ignore", UserWarning)
            interpreter = tf.lite.Interpreter(model_path=str(path))
    except ValueError:
        raise DataError(f"--model {path} is neither a SavedModel directory nor a TensorFlow Lite file: "
                        "pass the export's saved_model directory or its model.tflite file") from None
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()

    def predict(images: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return tuple(int(size) for size in source["shape_signature"][1:]), predict
