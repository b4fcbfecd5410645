"""Export: a trained model as a SavedModel with a serving signature, and as a TensorFlow Lite file.

    export_dir/
      saved_model/    TensorFlow's format: graph + weights; `tf.saved_model.load` needs no project code
      model.tflite    the same function converted for TensorFlow Lite (phones, microcontrollers, Coral)
      labels.txt      one class name per line, line i naming class i
      manifest.json   each file's size and sha256: a reader checks a file before trusting it
                      (a cut `.tflite` would crash TensorFlow Lite's interpreter: engine/deploy/serving.py)

The serving signature is the contract with whoever deploys the model:

    serving_default(images: float32 [None, *image_shape] in [0, 1])
        -> {"probabilities": float32 [None, num_classes]}, each row summing to 1

The model is wrapped in a `tf.Module` whose `serve` is a `tf.function` with that input signature:
saving traces it once, for any batch size, and stores the traced graph and the variables it
reads — not the Python classes, which is why the loader needs only TensorFlow. The TFLite file
is converted from that SavedModel (`TFLiteConverter.from_saved_model`), in float32 without
quantization, so it computes the same function up to kernel rounding.
"""

import hashlib
import json
import os
from typing import Sequence, Tuple

import tensorflow as tf
from absl import logging as absl_logging

from engine.errors import ConfigError
from engine.run import quiet

SIGNATURE = "serving_default"
INPUT, OUTPUT = "images", "probabilities"
SAVED_MODEL, TFLITE, LABELS, MANIFEST = "saved_model", "model.tflite", "labels.txt", "manifest.json"


def file_entry(data: bytes) -> dict:
    """A file's manifest entry: its size and sha256."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class ServingModule(tf.Module):
    """The model behind one traced entry point: images in, probabilities out."""

    def __init__(self, model: tf.Module, image_shape: Sequence[int]):
        super().__init__(name="serving")
        self.model = model
        spec = tf.TensorSpec((None, *image_shape), tf.float32, name=INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, images: tf.Tensor) -> dict:
        return {OUTPUT: self.model(images)}  # [batch, classes]


def check_export_dir(path: str) -> None:
    """Fails before training, not after it, when `path` cannot hold the export."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--export_dir {path} is a file, not a directory: pass a directory path")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--export_dir {path} cannot be created ({error.strerror}): pass a writable directory") from None


def export(model: tf.Module, image_shape: Sequence[int], class_names: Sequence[str],
           export_dir: str) -> Tuple[str, str]:
    """Writes the SavedModel, the .tflite and labels.txt into `export_dir`; returns the first two paths.

    Args:
      model: a trained, built model mapping float32 [batch, *image_shape] to probabilities.
      image_shape: one image's shape without the batch axis, e.g. (28, 28).
      class_names: the names of the classes, in output order.
      export_dir: created if missing; files already there are replaced.
    """
    check_export_dir(export_dir)
    saved_model = os.path.join(export_dir, SAVED_MODEL)
    module = ServingModule(model, image_shape)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.WARNING)  # the saver's INFO lines ("Assets written to ...") are noise here
    try:
        tf.saved_model.save(module, saved_model, signatures={SIGNATURE: module.serve})
        # The converter notes that it ignored a default option, on stderr at warning level, every time.
        with quiet.without_lines(r"Ignored (output_format|drop_control_dependency)\.$"):
            tflite_model = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
    finally:
        absl_logging.set_verbosity(verbosity)
    tflite = os.path.join(export_dir, TFLITE)
    with open(tflite, "wb") as file:
        file.write(tflite_model)
    labels = "".join(f"{name}\n" for name in class_names).encode()
    with open(os.path.join(export_dir, LABELS), "wb") as file:
        file.write(labels)
    with open(os.path.join(export_dir, MANIFEST), "w") as file:
        json.dump({TFLITE: file_entry(tflite_model), LABELS: file_entry(labels)}, file, indent=2)
    return saved_model, tflite
