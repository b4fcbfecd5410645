"""Every command-line entry point, as a user runs it: `--help` is fast and never loads TensorFlow,
a bad flag is one line and exit status 2, and a real run starts without lines that look like failures."""

import os
import subprocess
import sys
import time

import pytest

from engine import startup
from tests.conftest import REPO, mnist_subset

# (command after `python`, the program name its error lines start with, a flag value that does not parse)
ENTRY_POINTS = [
    (["train.py"], "train.py", "--epochs=abc"),
    (["-m", "engine.experiments.search"], "search", "--folds=abc"),
    (["-m", "engine.deploy.predict"], "predict", "--limit=abc"),
    (["-m", "engine.distribute.launch"], "launch", "--workers=abc"),
    (["-m", "engine.tour.graph_picture"], "python -m engine.tour.graph_picture", "--hidden=abc"),
    (["-m", "bench.report"], "python -m bench.report", "--quick=maybe"),
    (["-m", "bench.dispatch"], "python -m bench.dispatch", "--calls=abc"),
    (["-m", "bench.memory"], "python -m bench.memory", "--epochs=abc"),
    (["-m", "bench.scaling"], "python -m bench.scaling", "--examples=abc"),
    (["-m", "bench.kernels"], "python -m bench.kernels", "--rounds=abc"),
    (["-m", "bench.step_gap"], "python -m bench.step_gap", "--rounds=abc"),
    (["-m", "bench.graph_step"], "python -m bench.graph_step", "--batch_size=abc"),
]
IDS = [" ".join(command) for command, _, _ in ENTRY_POINTS]
# The tour's flags are all strings absl takes as given; its own bad values are tests/test_tour.py's.
WITH_THE_TOUR = ENTRY_POINTS + [(["-m", "engine.tour"], "python -m engine.tour", None)]
FAILURE_LOOKALIKES = ("cuInit", "cuda drivers", "cudart_stub", "E0000", "NodeDef", "absl::InitializeLog")


def run(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.parametrize("command, program, bad_value", WITH_THE_TOUR, ids=IDS + ["-m engine.tour"])
def test_help_exits_0_in_under_3_seconds_without_importing_tensorflow(command, program, bad_value):
    start = time.monotonic()
    result = run("-X", "importtime", *command, "--help")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {program} ") and "--[no]help" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time")]
    assert "absl.flags" in imported, "the -X importtime listing is what this test reads"
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]
    assert seconds < 3, f"{' '.join(command)} --help took {seconds:.1f} s"


@pytest.mark.parametrize("command, program, bad_value", ENTRY_POINTS, ids=IDS)
@pytest.mark.parametrize("kind", ["unknown flag", "bad value"])
def test_a_bad_flag_is_one_error_line_and_exit_status_2(command, program, bad_value, kind):
    result = run(*command, "--no_such_flag=1" if kind == "unknown flag" else bad_value)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr[-2000:]
    name = bad_value.split("=")[0]
    expected = "Unknown command line flag 'no_such_flag'" if kind == "unknown flag" else f"flag {bad_value}: "
    assert result.stderr.startswith(f"{program}: error: ") and expected in result.stderr, result.stderr
    assert kind == "unknown flag" or name in result.stderr


def test_the_start_up_filter_keeps_warnings_and_drops_only_the_cuda_probe_and_absls_note():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795996933.907773    7044 port.cc:153] oneDNN custom operations are on.\n"
            "I0000 00:00:1795996933.908042    7044 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
            "GPU will not be used.\n"
            "I0000 00:00:1795996933.949019    7044 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
            "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n"
            "/site-packages/x.py:12: UserWarning: a Python warning\n"
            "  warnings.warn(message)\n"
            "W0000 00:00:1795996934.000000    7044 some.cc:1] a real warning\n"
            "E0000 00:00:1795996936.635111    7044 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "E0000 00:00:1795996937.000000    7044 other.cc:2] a real error\n")
    warning = ("/site-packages/x.py:12: UserWarning: a Python warning\n  warnings.warn(message)\n"
               "W0000 00:00:1795996934.000000    7044 some.cc:1] a real warning\n")
    error = "E0000 00:00:1795996937.000000    7044 other.cc:2] a real error\n"
    assert startup.kept(text, min_level=1, hide_cuda_probe=True) == warning + error
    assert startup.kept(text, min_level=2, hide_cuda_probe=True) == warning.split("W0000")[0] + error
    with_driver = startup.kept(text, min_level=1, hide_cuda_probe=False)  # there the probe's failure is news
    assert "failed call to cuInit" in with_driver and "cuda drivers" not in with_driver  # that one is INFO
    everything = startup.kept(text, min_level=0, hide_cuda_probe=False)
    assert "To enable the following instructions" in everything and "absl::InitializeLog" not in everything


LIBRARY_USES = {
    "layers first": "from layers import Dense\nimport engine.training\nimport tensorflow as tf\n",
    "a core module first": "import engine.losses\nimport tensorflow as tf\n",
    "a layer module directly": "import layers.dense\nimport tensorflow as tf\n",
    "asked for first": "import importlib.util, engine\nassert importlib.util.find_spec('tensorflow')\n"
                       "import tensorflow as tf\n",
}


@pytest.mark.parametrize("first_lines", LIBRARY_USES.values(), ids=LIBRARY_USES.keys())
def test_the_engine_used_from_python_starts_tensorflow_without_the_cuda_probe_lines(first_lines):
    """A library user's `import` meets the same start-up filter as a program: whichever project
    module comes first, TensorFlow's first import goes through engine/startup.py's hook."""
    if startup.gpu_driver_present():
        pytest.skip(reason="this machine has a GPU driver: TensorFlow's CUDA probe lines are kept there")
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    code = first_lines + ("print(tf.config.list_physical_devices('GPU'), float(tf.reduce_sum(tf.ones(3))))\n"
                          "import warnings; warnings.warn('a real warning')\n")
    result = run("-c", code, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "[] 3.0\n"
    assert not [line for line in result.stderr.splitlines() if any(text in line for text in FAILURE_LOOKALIKES)], \
        result.stderr
    assert "UserWarning: a real warning" in result.stderr  # the filter is the start-up's, not the run's


def test_the_start_up_hook_is_gone_once_tensorflow_is_imported_and_keeps_tensorflows_own_loader():
    import tensorflow as tf

    assert "tensorflow" in sys.modules
    assert not any(isinstance(finder, type(startup._FINDER)) for finder in sys.meta_path)
    assert type(tf.__loader__).__module__ != "engine.startup" and type(tf.__spec__.loader) is type(tf.__loader__)
    startup.install()  # TensorFlow is imported: installing again is nothing
    assert startup._FINDER not in sys.meta_path


@pytest.fixture(scope="module")
def quiet_runs(mnist_t10k_dir, tmp_path_factory):
    """train.py (with an export), train.py --compare_keras and predict on the exported model, with
    TF_CPP_MIN_LOG_LEVEL unset, on 2,000 real digits: each one's exit status and stdout + stderr."""
    if startup.gpu_driver_present():
        pytest.skip(reason="this machine has a GPU driver: TensorFlow's CUDA probe lines are kept there")
    folder = tmp_path_factory.mktemp("quiet")
    (folder / "data").mkdir()
    data = mnist_subset(mnist_t10k_dir, folder / "data", train=2000, test=500)
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    common = ["--dataset=mnist", f"--data_dir={data}", f"--tfds_dir={folder / 'tfds'}", "--epochs=1", "--hidden=16"]
    runs = {"train": run("train.py", *common, f"--output_dir={folder / 'train'}", f"--export_dir={folder / 'export'}",
                         timeout=600, env=env),
            "compare_keras": run("train.py", "--compare_keras", *common, f"--output_dir={folder / 'parity'}",
                                 timeout=600, env=env)}
    for model in ("model.tflite", "saved_model"):
        runs[f"predict {model}"] = run("-m", "engine.deploy.predict", f"--model={folder / 'export' / model}",
                                       f"--images={data / 't10k-images-idx3-ubyte.gz'}", timeout=300, env=env)
    return {name: (result.returncode, result.stdout + result.stderr) for name, result in runs.items()}


@pytest.mark.parametrize("name", ["train", "compare_keras", "predict model.tflite", "predict saved_model"])
def test_a_real_run_on_a_machine_without_a_gpu_prints_no_line_that_looks_like_a_failure(quiet_runs, name):
    status, output = quiet_runs[name]
    assert status == 0, output[-3000:]
    assert not [line for line in output.splitlines() if any(text in line for text in FAILURE_LOOKALIKES)]
    assert "XNNPACK" not in output and "oneDNN" not in output
