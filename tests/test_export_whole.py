"""An export is one thing, or nothing (issue 23): replaced as a whole, and checked as a whole.

Two untrained MLPs of other seeds stand for two trainings: their exports hold files of the same
names and other bytes, which is what a re-export killed half-way used to leave mixed. `predict`
must refuse a mixed, damaged or incomplete export with one line and exit status 2; a re-export
that fails or is killed leaves the old export whole.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from engine.data import idx
from engine.deploy import export, manifest, predict
from engine.deploy.serving import Classifier
from engine.errors import ConfigError, DataError
from engine.app.preflight import check_directories
from engine.run.config import TrainConfig
from layers import mlp
from tests.conftest import REPO


def _export(seed: int, folder: Path) -> Path:
    tf.random.set_seed(seed)
    model = mlp((8,), 10)
    model.build((None, 28, 28))
    export.export(model, (28, 28), [f"class {i}" for i in range(10)], str(folder))
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two exports of two models, and 20 images to classify."""
    root = tmp_path_factory.mktemp("exports")
    images = root / "images.gz"
    idx.write_idx(images, np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    return {"a": _export(1, root / "a"), "b": _export(2, root / "b"), "images": images}


def _copy(exports, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exports[name], tmp_path / name, symlinks=True))


def _predictions(model: Path, exports) -> np.ndarray:
    return Classifier(model).predict(idx.read_idx(exports["images"]).astype(np.float32) / 255)


def _refused(model: Path, images: Path, capsys, *flags: str) -> str:
    assert predict.main(["predict", f"--model={model}", f"--images={images}", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("predict: error: "), err
    return err


def test_the_manifest_lists_every_file_of_the_export_saved_model_included(exports):
    folder = exports["a"]
    files = {str(path.relative_to(folder)): path for path in folder.rglob("*") if path.is_file()}
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert set(listed) == set(files) - {"manifest.json"}
    assert {"saved_model/saved_model.pb", "model.tflite", "labels.txt"} <= set(listed)
    assert any(name.startswith("saved_model/variables/") for name in listed)
    for name, entry in listed.items():
        data = files[name].read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert sorted(os.listdir(folder.parent)) == ["a", "b", "images.gz"], "nothing left beside the exports"


@pytest.mark.parametrize("model", ["saved_model", "model.tflite"])
def test_a_saved_model_of_one_export_beside_the_tflite_of_another_is_refused(exports, tmp_path, capsys, model):
    mixed = _copy(exports, "a", tmp_path)
    shutil.rmtree(mixed / "saved_model")
    shutil.copytree(exports["b"] / "saved_model", mixed / "saved_model")
    err = _refused(mixed / model, exports["images"], capsys)
    assert f"--model {mixed / model}: the export {mixed} is mixed or damaged: saved_model/" in err
    assert "the file is cut or changed; export it again" in err


@pytest.mark.parametrize("damage, message", [
    ("flip", "is mixed or damaged: saved_model/variables/variables.data-00000-of-00001 is"),
    ("extra", "is mixed: saved_model/extra.pb is not in its manifest.json (a file of another export?)"),
    ("missing", "is incomplete: model.tflite, listed in its manifest.json, is missing"),
    ("link", "is damaged: labels.txt is a symbolic link (to"),
    ("manifest", "has an unreadable manifest.json (JSONDecodeError)"),
])
def test_a_damaged_or_incomplete_export_is_refused_naming_the_file(exports, tmp_path, capsys, damage, message):
    folder = _copy(exports, "a", tmp_path)
    if damage == "flip":
        data = folder / "saved_model" / "variables" / "variables.data-00000-of-00001"
        data.write_bytes(bytes([data.read_bytes()[0] ^ 1]) + data.read_bytes()[1:])
    elif damage == "extra":
        (folder / "saved_model" / "extra.pb").write_bytes(b"from another export")
    elif damage == "missing":
        (folder / "model.tflite").unlink()
    elif damage == "link":
        (folder / "labels.txt").rename(tmp_path / "labels.txt")
        (folder / "labels.txt").symlink_to(tmp_path / "labels.txt")
    else:
        (folder / "manifest.json").write_text("{cut")
    model = folder / ("saved_model" if damage == "missing" else "model.tflite")
    assert message in _refused(model, exports["images"], capsys)


def test_an_export_whose_manifest_predates_saved_model_s_entries_is_checked_for_what_it_lists(exports, tmp_path):
    folder = _copy(exports, "a", tmp_path)
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    (folder / "manifest.json").write_text(json.dumps({name: listed[name] for name in ("model.tflite", "labels.txt")}))
    assert Classifier(folder / "saved_model").class_names[0] == "class 0"
    (folder / "labels.txt").write_text("".join(f"other {i}\n" for i in range(10)))
    with pytest.raises(DataError, match="labels.txt is .* the file is cut or changed"):
        Classifier(folder / "model.tflite")


def test_a_re_export_replaces_the_whole_export_and_a_failed_one_leaves_the_old(exports, tmp_path, monkeypatch):
    folder = _copy(exports, "a", tmp_path)
    (folder / "saved_model" / "assets" / "left-over").write_bytes(b"of an older export")
    before = manifest._files(str(folder))
    _export(2, folder)  # b's model
    np.testing.assert_array_equal(_predictions(folder / "saved_model", exports), _predictions(exports["b"] / "saved_model", exports))
    assert "saved_model/assets/left-over" in before and not (folder / "saved_model" / "assets" / "left-over").exists()

    def fail(*args, **kwargs):
        raise RuntimeError("the converter failed")

    old = {path: (folder / path).read_bytes() for path in manifest._files(str(folder))}
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", fail)
    with pytest.raises(RuntimeError, match="the converter failed"):
        _export(3, folder)
    assert {path: (folder / path).read_bytes() for path in manifest._files(str(folder))} == old
    assert os.listdir(tmp_path) == ["a"], "the half-made export is gone"


def test_an_export_dir_that_holds_other_files_or_the_run_s_other_directories_is_refused_before_training(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    for export_dir, output_dir, message in [
            (tmp_path / "mine", tmp_path / "run", "holds notes.txt, which it would not write"),
            (tmp_path / "runs", tmp_path / "runs" / "train", f"--export_dir {tmp_path}/runs holds --output_dir"),
            (tmp_path / "same", tmp_path / "same", f"--export_dir {tmp_path}/same holds --output_dir")]:
        with pytest.raises(ConfigError, match=message):
            check_directories(TrainConfig(output_dir=str(output_dir), export_dir=str(export_dir)))
    check_directories(TrainConfig(output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "run" / "export")))
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_predict_refuses_a_csv_that_is_one_of_its_inputs_before_reading_anything(exports, tmp_path, capsys):
    folder = _copy(exports, "a", tmp_path)
    before = {path: (folder / path).read_bytes() for path in manifest._files(str(folder))}
    tflite = folder / "model.tflite"
    for csv, message in [(tflite, f"--csv {tflite} is {tflite}, which this run reads"),
                         (folder / "labels.txt", "which this run reads: writing it would destroy an input"),
                         (exports["images"], "which this run reads"),
                         (folder / "saved_model" / "p.csv", f"is inside {folder / 'saved_model'}")]:
        model = folder / ("saved_model" if "saved_model" in str(csv) else "model.tflite")
        assert message in _refused(model, exports["images"], capsys, f"--csv={csv}")
    assert {path: (folder / path).read_bytes() for path in manifest._files(str(folder))} == before
    assert predict.main(["predict", f"--model={tflite}", f"--images={exports['images']}",
                         f"--csv={folder / 'predictions.csv'}"]) == 0  # beside the model: a file of its own
    assert len((folder / "predictions.csv").read_text().splitlines()) == 21


def test_predict_says_a_directory_given_as_images_is_a_directory(exports, tmp_path, capsys):
    err = _refused(exports["a"] / "model.tflite", tmp_path, capsys)
    assert f"--images {tmp_path} is a directory: pass the IDX or PNG image files in it" in err


@pytest.mark.parametrize("damage, message", [
    ("cut", "its variables do not read back into its graph (Read less bytes than requested): the SavedModel is cut"),
    ("deleted", "has no variables/variables.index: the SavedModel is cut; export it again"),
])
def test_a_saved_model_put_together_by_hand_with_its_variables_cut_or_deleted_is_refused(exports, tmp_path, capsys,
                                                                                        damage, message):
    """Without a manifest only the SavedModel's own reading can refuse it; a variables folder that is
    gone is said to be gone, not blamed on the device as TensorFlow's message does."""
    folder = _copy(exports, "a", tmp_path)
    (folder / "manifest.json").unlink()
    variables = folder / "saved_model" / "variables"
    if damage == "cut":
        data = variables / "variables.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:100])
    else:
        shutil.rmtree(variables)
    err = _refused(folder / "saved_model", exports["images"], capsys)
    assert message in err and "device" not in err, err


KILLED_EXPORT = """
import sys
from engine import startup
tf = startup.import_tensorflow()
from engine.deploy import export
from layers import mlp
tf.random.set_seed(int(sys.argv[2]))
model = mlp((8,), 10)
model.build((None, 28, 28))
print("exporting", flush=True)
export.export(model, (28, 28), [f"class {i}" for i in range(10)], sys.argv[1])
print("exported", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill, delay", [(signal.SIGKILL, 0.3), (signal.SIGKILL, 1.0), (signal.SIGKILL, 2.0),
                                         (signal.SIGTERM, 0.6), (signal.SIGTERM, 1.5)])
def test_a_re_export_killed_at_any_moment_leaves_one_whole_export(exports, tmp_path, kill, delay):
    import time

    folder = _copy(exports, "a", tmp_path)
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(folder), "2"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout.readline() == "exporting\n"
    time.sleep(delay)
    process.send_signal(kill)
    process.communicate(timeout=120)
    found = [_predictions(folder / name, exports) for name in ("saved_model", "model.tflite")]  # each checked whole
    old, new = (_predictions(exports[name] / "saved_model", exports) for name in ("a", "b"))  # b: the same seed, 2
    assert all(np.allclose(p, old, atol=1e-5) for p in found) or all(np.allclose(p, new, atol=1e-5) for p in found)
    _export(3, folder)  # the next export clears what the killed one left beside
    assert os.listdir(tmp_path) == ["a"]
