"""Loading an exported model — a SavedModel directory or a .tflite file — as one kind of classifier.

Both formats hold the same function (engine/deploy/export.py): float32 images [N, *image_shape] in
[0, 1] -> probabilities [N, num_classes]. Only TensorFlow is needed to run them, not this
project's classes: the SavedModel through its `serving_default` signature, the TFLite model
through `tf.lite.Interpreter`, whose input is resized to the batch at hand (TFLite tensors
have fixed shapes; the converter records the batch axis as -1, resizable).

A model beside a `manifest.json` is part of an export, and the whole export is checked against
it before anything is loaded (engine/deploy/manifest.py): a SavedModel and a `.tflite` of two
trainings, mixed in one directory, are refused rather than each served without complaint.

A `.tflite` file is checked before the interpreter touches it: TensorFlow Lite's C++ loader
trusts the flatbuffer, and a truncated file crashes the whole process (a segmentation fault,
exit 139, no message). So, manifest or not, the flatbuffer is parsed in Python first
(`check_tflite`), where a cut or corrupted file raises an error instead.
"""

import os
from pathlib import Path
from typing import Callable, Tuple

import numpy as np
import tensorflow as tf

from engine.errors import DataError
from engine.deploy import manifest
from engine.deploy.export import INPUT, LABELS, MANIFEST, OUTPUT, SIGNATURE
from engine.run import quiet


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
        if (self.path.parent / MANIFEST).is_file():
            manifest.verify(str(self.path.parent), str(self.path))
        load = _load_saved_model if self.path.is_dir() else _load_tflite
        self.image_shape, num_classes, self._predict = load(self.path)
        labels = self.path.parent / LABELS
        names = _read_labels(labels) if labels.is_file() else ()
        if labels.is_file() and len(names) != num_classes:
            raise DataError(f"{labels} names {len(names)} classes, the model has {num_classes}: "
                            "use the labels.txt exported with this model")
        self.class_names = names or tuple(str(index) for index in range(num_classes))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, classes] for float32 images [N, *image_shape] in [0, 1]."""
        return self._predict(np.asarray(images, np.float32))


Loaded = Tuple[Tuple[int, ...], int, Callable[[np.ndarray], np.ndarray]]  # image shape, classes, predict


def _load_saved_model(path: Path) -> Loaded:
    if not (path / "saved_model.pb").is_file():
        raise DataError(f"--model {path} is a directory without saved_model.pb, so not a SavedModel: pass the "
                        "export's saved_model directory or its model.tflite file")
    try:
        serve = tf.saved_model.load(str(path)).signatures.get(SIGNATURE)
    except OSError as error:  # what TensorFlow raises for a corrupt or foreign saved_model.pb, or missing variables
        variables = path / "variables" / "variables"
        if str(variables) in str(error) and not variables.with_suffix(".index").is_file():  # TF would blame the device
            raise DataError(f"--model {path} has no variables/variables.index: the SavedModel is cut; "
                            "export it again") from None
        raise DataError(f"--model {path}: unreadable SavedModel ({error}): export it again") from None
    except (ValueError, IndexError, tf.errors.OpError) as error:  # variables cut, or of another graph
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"--model {path}: its variables do not read back into its graph ({reason}): the "
                        "SavedModel is cut or mixed; export it again") from None
    spec = serve.structured_input_signature[1].get(INPUT) if serve is not None else None
    if spec is None:
        raise DataError(f"--model {path} has no '{SIGNATURE}' signature taking '{INPUT}': "
                        "export it with train.py --export_dir")
    outputs = serve.structured_outputs
    _check_contract(path, spec.dtype.as_numpy_dtype, spec.shape.rank and tuple(spec.shape),
                    sorted(outputs), outputs[OUTPUT].shape.rank if OUTPUT in outputs else None)
    num_classes = int(outputs[OUTPUT].shape[-1])
    return tuple(spec.shape[1:]), num_classes, lambda images: serve(**{INPUT: tf.constant(images)})[OUTPUT].numpy()


def _check_contract(path: Path, dtype, shape, output_names, output_rank) -> None:
    """Refuses a model that is not the export's function, float32 images [N, ...] -> probabilities [N, classes].

    `shape` is the input's shape with the batch axis (None or () when its rank is unknown).
    """
    fix = "predict reads the exports of train.py --export_dir"
    if np.dtype(dtype) != np.float32:
        raise DataError(f"--model {path} takes {np.dtype(dtype).name} images, not float32 in [0, 1]: {fix}")
    if not shape or len(shape) < 2 or None in shape[1:] or -1 in shape[1:]:
        said = "of unknown rank" if not shape else f"of shape {list(shape)}"
        raise DataError(f"--model {path} takes input {said}, so the size of its images cannot be read from it: "
                        f"{fix}, whose input is [N, height, width]")
    if OUTPUT not in output_names or output_rank != 2:
        raise DataError(f"--model {path} returns {', '.join(output_names) or 'nothing'}, not '{OUTPUT}' "
                        f"[N, classes]: {fix}")


def _read_labels(path: Path) -> Tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start}): use the labels.txt "
                        "exported with this model") from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error.strerror})") from None
    names = tuple(text.splitlines())
    if any(not name.strip() for name in names):
        raise DataError(f"{path} has an empty line among its {len(names)} class names: use the labels.txt exported "
                        "with this model")
    return names


def check_tflite(path: Path) -> None:
    """Refuses a file TensorFlow Lite's loader could crash on: see the module docstring.

    Raises:
      DataError: not a TensorFlow Lite flatbuffer, or cut short.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"--model {path} cannot be read ({error.strerror})") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise DataError(f"--model {path} is neither a SavedModel directory nor a TensorFlow Lite file: "
                        "pass the export's saved_model directory or its model.tflite file")
    from tensorflow.lite.python import schema_py_generated as schema  # the flatbuffer's Python reader

    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        ends = [buffer.offset + buffer.size for buffer in model.buffers or () if buffer.offset > 1]
        if not model.subgraphs or any(end > len(data) for end in ends):
            raise ValueError("a buffer or subgraph is missing")
    except Exception as error:  # a cut flatbuffer fails in many ways (struct, index, value errors)
        raise DataError(f"--model {path} is a damaged TensorFlow Lite file ({type(error).__name__}): "
                        "export it again") from None


_XNNPACK_NOTE = r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"


def _load_tflite(path: Path) -> Loaded:
    check_tflite(path)
    try:
        with quiet.without_warnings(UserWarning):  # its successor (ai_edge_litert) is another package; this one works
            interpreter = tf.lite.Interpreter(model_path=str(path))
    except ValueError:
        raise DataError(f"--model {path} is neither a SavedModel directory nor a TensorFlow Lite file: "
                        "pass the export's saved_model directory or its model.tflite file") from None
    inputs, targets = interpreter.get_input_details(), interpreter.get_output_details()
    signature = interpreter.get_signature_list().get(SIGNATURE, {})
    if len(inputs) != 1 or len(targets) != 1:
        raise DataError(f"--model {path} takes {len(inputs)} inputs and returns {len(targets)} outputs, not one "
                        "each: predict reads the exports of train.py --export_dir")
    (source,), (target,) = inputs, targets
    _check_contract(path, source["dtype"], tuple(int(size) for size in source["shape_signature"]),
                    signature.get("outputs", [OUTPUT]), len(target["shape"]))

    def predict(images: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source["index"], images.shape)
        with quiet.without_lines(_XNNPACK_NOTE):  # applying its default CPU delegate says so, at every level
            interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return tuple(int(size) for size in source["shape_signature"][1:]), int(target["shape"][-1]), predict
