"""Export and predict: TensorFlow alone reproduces the engine's predictions; predict reads IDX and PNG."""

import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from engine import losses, optimizers
from engine.deploy import export, image_files, predict
from engine.data import idx
from engine.deploy.serving import Classifier
from engine.training import Trainer
from layers import mlp

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Runs in a fresh interpreter: -I drops the current directory and PYTHONPATH from sys.path, and the
# working directory is outside the repository, so the project cannot be imported even by accident.
FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    images = np.load("images.npy")
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    np.save("saved_model.npy", serve(images=tf.constant(images))["probabilities"].numpy())
    interpreter = tf.lite.Interpreter(model_path=sys.argv[2])
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    np.save("tflite.npy", interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    project = sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "layers", "train"))
    json.dump({"project_modules": project, "path": sys.path}, open("imports.json", "w"))
""")


@pytest.fixture(scope="module")
def exported(fashion_mnist_dir, tmp_path_factory):
    """A tiny MLP trained for one epoch on 2,000 real Fashion-MNIST images, exported; and 1,000 test images."""
    train_x = idx.read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")[:2000].astype(np.float32) / 255
    train_y = idx.read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz")[:2000].astype(np.int32)
    test_pixels = idx.read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")[:1000]
    test_labels = idx.read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")[:1000]
    tf.random.set_seed(0)
    model = mlp((16,), 10)
    Trainer(model, losses.sparse_categorical_crossentropy, optimizers.SGD(0.1), "graph", 16).fit(
        train_x, train_y, epochs=1, batch_size=32)
    folder = tmp_path_factory.mktemp("export")
    saved_model, tflite = export.export(model, (28, 28), CLASS_NAMES, str(folder))
    test_images = test_pixels.astype(np.float32) / 255
    return {"folder": folder, "saved_model": saved_model, "tflite": tflite, "pixels": test_pixels,
            "images": test_images, "labels": test_labels, "engine": model(test_images).numpy()}


def test_a_fresh_tensorflow_only_process_reproduces_the_engines_predictions(exported, tmp_path):
    np.save(tmp_path / "images.npy", exported["images"])
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    result = subprocess.run([sys.executable, "-I", "fresh.py", exported["saved_model"], exported["tflite"]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    imports = json.loads((tmp_path / "imports.json").read_text())
    assert imports["project_modules"] == [] and "" not in imports["path"]
    engine = exported["engine"]
    assert engine.shape == (1000, 10) and np.allclose(engine.sum(axis=1), 1, atol=1e-5)
    saved_model_diff = np.abs(np.load(tmp_path / "saved_model.npy") - engine).max()
    tflite_diff = np.abs(np.load(tmp_path / "tflite.npy") - engine).max()
    print(f"max |probability difference| on 1,000 test images: SavedModel {saved_model_diff:.2e}, "
          f"TFLite {tflite_diff:.2e}")
    assert saved_model_diff <= 1e-5 and tflite_diff <= 1e-4
    assert (engine.argmax(1) == exported["labels"]).mean() > 0.5, "a trained model, not chance (0.1)"


def test_the_serving_signature_takes_images_of_any_batch_and_returns_probabilities(exported):
    serve = tf.saved_model.load(exported["saved_model"]).signatures["serving_default"]
    (spec,) = serve.structured_input_signature[1].values()
    assert (spec.name, spec.dtype, spec.shape.as_list()) == ("images", tf.float32, [None, 28, 28])
    assert serve.structured_outputs["probabilities"].shape.as_list() == [None, 10]


@pytest.mark.parametrize("model_file", ["saved_model", "tflite"])
def test_predict_classifies_an_idx_file_and_names_the_classes(exported, model_file, tmp_path, capsys):
    idx.write_idx(tmp_path / "images.gz", exported["pixels"][:50])
    assert predict.main(["predict", f"--model={exported[model_file]}", f"--images={tmp_path / 'images.gz'}",
                         "--limit=0", f"--csv={tmp_path / 'out.csv'}"]) == 0
    expected = exported["engine"][:50].argmax(1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Model: {exported[model_file]}, 10 classes, images (28, 28); 50 images from 1 file")
    assert lines[1] == "source\tclass\tname\tprobability"
    assert [line.split("\t")[:3] for line in lines[2:52]] == [
        [f"{tmp_path / 'images.gz'}[{i}]", str(c), CLASS_NAMES[c]] for i, c in enumerate(expected)]
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert [int(row["class"]) for row in rows] == expected.tolist()
    assert float(rows[0]["p_Trouser"]) == pytest.approx(exported["engine"][0, 1], abs=1e-4)


def test_predict_prints_the_first_limit_rows_and_a_per_class_summary_and_the_csv_keeps_all(exported, tmp_path,
                                                                                          capsys):
    idx.write_idx(tmp_path / "images.gz", exported["pixels"])  # 1,000 images
    assert predict.main(["predict", f"--model={exported['tflite']}", f"--images={tmp_path / 'images.gz'}",
                         "--limit=5", f"--csv={tmp_path / 'out.csv'}"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len([line for line in lines if line.startswith(str(tmp_path))]) == 5
    assert "... 995 more (--limit=0 prints all; --csv=FILE writes all)" in lines
    expected = np.bincount(exported["engine"].argmax(1), minlength=10)
    summary = lines[lines.index("Per class: images predicted, share, mean probability of the predicted class") + 1:]
    assert [(int(line.split()[0]), int(line.split()[-3].replace(",", ""))) for line in summary] == list(
        enumerate(expected))
    assert len(list(csv.DictReader(open(tmp_path / "out.csv")))) == 1000
    assert "XNNPACK" not in captured.err and captured.err == ""


def test_png_images_in_grey_or_colour_classify_as_the_same_pixels_from_idx(exported, tmp_path):
    pixels = exported["pixels"][:2]
    tf.io.write_file(str(tmp_path / "grey.png"), tf.io.encode_png(pixels[0][..., None]))
    tf.io.write_file(str(tmp_path / "colour.png"), tf.io.encode_png(np.repeat(pixels[1][..., None], 3, axis=-1)))
    images, sources = image_files.read_images([str(tmp_path / "grey.png"), str(tmp_path / "colour.png")], (28, 28))
    assert sources == [str(tmp_path / "grey.png"), str(tmp_path / "colour.png")]
    np.testing.assert_allclose(images, exported["images"][:2], atol=1 / 255 + 1e-7)  # grey = luminance, rounded
    assert Classifier(exported["tflite"]).predict(images).argmax(1).tolist() == exported["engine"][:2].argmax(1).tolist()


@pytest.mark.parametrize("model, image, message", [
    ("missing_model", "images.gz", "--model {tmp}/missing_model does not exist"),
    ("{folder}", "images.gz", "--model {folder} is a directory without saved_model.pb, so not a SavedModel"),
    ("{folder}/labels.txt", "images.gz", "--model {folder}/labels.txt is neither a SavedModel directory nor a TensorFlow Lite file"),
    ("corrupt", "images.gz", "--model {tmp}/corrupt: unreadable SavedModel"),
    ("{tflite}", "missing.png", "--images {tmp}/missing.png does not exist"),
    ("{tflite}", "big.png", "--images {tmp}/big.png is 32x30 pixels, the model takes 28x28: resize it first"),
    ("{saved_model}", "small.gz", "--images {tmp}/small.gz holds uint8 images of shape (14, 14), the model takes"),
    ("{tflite}", "labels.txt", "{tmp}/labels.txt: bad magic number"),
])
def test_bad_input_gets_one_error_line_and_exit_status_2(exported, model, image, message, tmp_path, capsys):
    idx.write_idx(tmp_path / "images.gz", exported["pixels"][:2])
    idx.write_idx(tmp_path / "small.gz", exported["pixels"][:2, ::2, ::2])
    tf.io.write_file(str(tmp_path / "big.png"), tf.io.encode_png(np.zeros((30, 32, 1), np.uint8)))
    (tmp_path / "labels.txt").write_text("not an image\n")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "saved_model.pb").write_text("not a SavedModel")
    names = {"tmp": tmp_path, "folder": exported["folder"], "tflite": exported["tflite"],
             "saved_model": exported["saved_model"]}
    model = model.format(**names) if "{" in model else str(tmp_path / model)
    assert predict.main(["predict", f"--model={model}", f"--images={tmp_path / image}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"predict: error: {message.format(**names)}"), captured.err


def test_a_labels_file_that_does_not_match_the_model_is_refused(exported, tmp_path, capsys):
    (tmp_path / "model.tflite").write_bytes(open(exported["tflite"], "rb").read())
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert predict.main(["predict", f"--model={tmp_path / 'model.tflite'}", "--images=unused.gz"]) == 2
    assert capsys.readouterr().err == (f"predict: error: {tmp_path}/labels.txt names 2 classes, the model has 10: "
                                       "use the labels.txt exported with this model\n")


@pytest.mark.parametrize("argv, message", [
    ([], "--model and --images must be given"),
    (["--model=m.tflite"], "--images must be given"),
    (["--model=m.tflite", "--images=a.gz", "--limit=-1"], "flag --limit=-1: -1 is not a non-negative integer"),
])
def test_a_missing_or_bad_flag_is_one_error_line(argv, message, capsys):
    assert predict.main(["predict", *argv]) == 2
    assert capsys.readouterr().err.startswith(f"predict: error: {message}")


def test_predict_s_help_says_that_loading_a_saved_model_runs_its_program():
    """TensorFlow's own caveat: a SavedModel is a program, not data; --help says so where --model is."""
    assert "Loading a SavedModel runs the program it holds" in predict.FLAGS["model"].help
    assert "pass only models you trust" in predict.FLAGS["model"].help
