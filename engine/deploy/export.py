"""Export: a trained model as a SavedModel with a serving signature, and as a TensorFlow Lite file.

    export_dir/
      saved_model/    TensorFlow's format: graph + weights; `tf.saved_model.load` needs no project code
      model.tflite    the same function converted for TensorFlow Lite (phones, microcontrollers, Coral)
      labels.txt      one class name per line, line i naming class i
      manifest.json   the size and sha256 of every file above, saved_model/ included: a reader
                      trusts the export only when all match (engine/deploy/manifest.py)

An export is one thing, or nothing: it is built in a fresh directory beside `export_dir` and
swapped in by one rename (engine/run/swap.py's `replaced_directory`), so a reader, or a
run killed half-way through exporting, finds the whole old export or the whole new one.

The serving signature is the contract with whoever deploys the model:

    serving_default(images: float32 [None, *image_shape] in [0, 1])
        -> {"probabilities": float32 [None, num_classes]}, each row summing to 1

The model is wrapped in a `tf.Module` whose `serve` is a `tf.function` with that input signature:
saving traces it once, for any batch size, and stores the traced graph and the variables it
reads — not the Python classes, which is why the loader needs only TensorFlow. The TFLite file
is converted from that SavedModel (`TFLiteConverter.from_saved_model`), in float32 without
quantization, so it computes the same function up to kernel rounding.
"""

import os
from typing import Sequence, Tuple

import tensorflow as tf

from engine.deploy import manifest
from engine.deploy.manifest import LABELS, MANIFEST, SAVED_MODEL, TFLITE  # noqa: F401 - the export's names
from engine.run import quiet, swap, writes

SIGNATURE = "serving_default"
INPUT, OUTPUT = "images", "probabilities"


class ServingModule(tf.Module):
    """The model behind one traced entry point: images in, probabilities out."""

    def __init__(self, model: tf.Module, image_shape: Sequence[int]):
        super().__init__(name="serving")
        self.model = model
        spec = tf.TensorSpec((None, *image_shape), tf.float32, name=INPUT)
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, images: tf.Tensor) -> dict:
        return {OUTPUT: self.model(images)}  # [batch, classes]


def export(model: tf.Module, image_shape: Sequence[int], class_names: Sequence[str],
           export_dir: str) -> Tuple[str, str]:
    """Writes the SavedModel, the .tflite and labels.txt into `export_dir`; returns the first two paths.

    Args:
      model: a trained, built model mapping float32 [batch, *image_shape] to probabilities.
      image_shape: one image's shape without the batch axis, e.g. (28, 28).
      class_names: the names of the classes, in output order.
      export_dir: created if missing; an earlier export there is replaced as a whole.

    Raises:
      ConfigError: `export_dir` is a link or a file, or holds what an export does not write.
    """
    module = ServingModule(model, image_shape)
    with swap.replaced_directory(export_dir, manifest.ENTRIES, "--export_dir") as staging:
        saved_model = os.path.join(staging, SAVED_MODEL)
        with quiet.absl_verbosity("warning"):  # the saver's INFO lines ("Assets written to ...") are noise
            tf.saved_model.save(module, saved_model, signatures={SIGNATURE: module.serve})
            # The converter notes that it ignored a default option, on stderr at warning level, every time.
            with quiet.without_lines(r"Ignored (output_format|drop_control_dependency)\.$"):
                tflite_model = tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()
        writes.write_bytes(os.path.join(staging, TFLITE), tflite_model)
        writes.write_bytes(os.path.join(staging, LABELS), "".join(f"{name}\n" for name in class_names).encode())
        manifest.write(staging)
    return os.path.join(export_dir, SAVED_MODEL), os.path.join(export_dir, TFLITE)
