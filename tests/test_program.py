"""One boundary per program (engine/run/program.py): every failure is one line and README's exit status.

First the rule, read from the source: every module that runs as a program calls `program.start`
after its flags and ends through `program.run`, and no program handles an ending itself. Then
the boundary itself, and the failures issue 23 listed, each one line, the right status, no
traceback; the quick ones in this process, the ones that need a real process as subprocesses.
"""

import ast
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.distribute import cluster
from engine.errors import ConfigError, DataError
from engine.experiments import search
from engine.experiments.search_store import ResultsFile
from engine.run import interrupts, program
from engine.run.faults import RunFault
from tests.conftest import REPO

# A worker is a process another program starts and speaks to over a pipe, not a command a user runs:
# its failures go back over the pipe, and the program that started it says them in its one line.
WORKERS = {"bench/peer_worker.py"}
PROGRAMS = sorted(path for pattern in ("engine/**/*.py", "bench/*.py", "train.py") for path in REPO.glob(pattern)
                  if 'if __name__ == "__main__"' in path.read_text() and str(path.relative_to(REPO)) not in WORKERS)


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_a_worker_says_which_program_starts_it_and_sends_its_failures_back(name):
    text = (REPO / name).read_text()
    assert "started by" in ast.get_docstring(ast.parse(text)) and "traceback" in text
ENDINGS = {"ConfigError", "DataError", "RunFault", "ClusterError", "KeyboardInterrupt", "Interrupted", "OSError"}


def calls(tree: ast.AST) -> set:
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_the_rule_finds_every_program():
    names = {str(path.relative_to(REPO)) for path in PROGRAMS}
    assert {"train.py", "engine/experiments/search.py", "engine/deploy/predict.py", "engine/tour/__main__.py",
            "engine/tour/graph_picture.py", "engine/distribute/launch.py", "bench/report.py"} <= names, names


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_program_starts_and_ends_through_the_boundary(path):
    tree = ast.parse(path.read_text())
    main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), None)
    assert main is not None and "program.run" in calls(main), f"{path.name}: main must return program.run(...)"
    assert "program.start" in calls(tree), f"{path.name}: call program.start(PROGRAM, FLAGS, __name__) after the flags"
    guard = next(node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
    assert [ast.unparse(statement) for statement in guard.body] in (["sys.exit(main())"], ["sys.exit(main(sys.argv))"])
    run_call = next(node for node in ast.walk(main) if isinstance(node, ast.Call) and ast.unparse(node.func) == "program.run")
    body_name = ast.unparse(run_call.args[3])
    body = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == body_name)
    handled = {ast.unparse(handler.type).split(".")[-1] for part in (main, body) for node in ast.walk(part)
               if isinstance(node, ast.Try) for handler in node.handlers if handler.type is not None}
    assert not handled & ENDINGS, f"{path.name} handles {handled & ENDINGS} itself: leave endings to program.run"
    assert "cli.error_line" not in calls(tree), "an error line is the boundary's to print: raise ConfigError"


@pytest.mark.parametrize("error, status, line", [
    (ConfigError("--x is bad: pass --y"), 2, "prog: error: --x is bad: pass --y"),
    (DataError("data.gz: cut"), 2, "prog: error: data.gz: cut"),
    (RunFault("the loss is nan"), 1, "prog: error: the loss is nan"),
    (OSError(28, "No space left on device", "/x/h.json"), 1,
     "prog: error: No space left on device at /x/h.json: free some space"),
    (MemoryError(), 1, "prog: error: out of memory (MemoryError)"),
    (KeyboardInterrupt(), 130, "prog: stopped by SIGINT. hint"),
    (interrupts.Stopped(signal.SIGTERM), 143, "prog: stopped by SIGTERM. hint"),
])
def test_every_ending_is_one_line_and_readmes_exit_status(error, status, line):
    got_status, got_line = program.ending("prog", error, "hint")
    assert got_status == status and got_line.startswith(line) and "\n" not in got_line


def test_an_unexpected_exception_is_named_in_one_line_and_its_traceback_is_in_a_log(capsys):
    def body():
        raise ZeroDivisionError("1 / 0")

    assert program.run("prog", search.FLAGS, ["prog"], body) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("prog: error: unexpected ZeroDivisionError: 1 / 0 — its traceback is in ") and "\n" not in line
    log = line.split("its traceback is in ")[1].split(";")[0]
    assert "Traceback" in open(log).read() and "body" in open(log).read()
    os.unlink(log)


def test_a_signal_is_held_from_the_first_line_and_the_handlers_are_put_back(capsys):
    before = signal.getsignal(signal.SIGTERM)

    def body():
        os.kill(os.getpid(), signal.SIGTERM)  # as while the data loads: no training handler yet
        time.sleep(5)
        return 0

    assert program.run("prog", search.FLAGS, ["prog"], body, stop_hint="rerun") == 143
    assert capsys.readouterr().err == "prog: stopped by SIGTERM. rerun\n"
    assert signal.getsignal(signal.SIGTERM) is before


def test_what_a_signal_broke_ends_as_the_signal(capsys):
    def body():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise RuntimeError("CancelledError") from None  # asyncio, a broken pool: the signal's doing
        return 0

    assert program.run("prog", search.FLAGS, ["prog"], body) == 130
    assert capsys.readouterr().err == "prog: stopped by SIGINT\n"


@pytest.mark.parametrize("argv, message", [
    (["--seed=-1"], "flag --seed=-1: --seed must be in [0, 2**31)"),
    (["--dataset=fashion-mnist"], "dataset names use underscores, not dashes: did you mean --dataset=fashion_mnist?"),
    (["--dataset="], "flag --dataset=: expected a dataset name"),
    (["--learning_rate=inf"], "every --learning_rate must be finite"),
    (["--output_dir=/dev/null/search"], "--output_dir /dev/null/search is not writable"),
])
def test_search_refuses_before_loading_anything(argv, message, capsys):
    assert search.main(["search", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("trial, problem", [
    ({"params": {"hidden": [8]}, "accuracy": "0.9", "loss": 0.3}, "has accuracy '0.9' (str), not a number"),
    ({"params": {}, "accuracy": 0.9, "loss": 0.3}, "has params {}, not the trial's settings"),
    ({"params": {"hidden": [8]}, "accuracy": None, "loss": None}, "has no accuracy and is not marked diverged"),
])
def test_a_results_file_with_wrong_types_is_refused(tmp_path, trial, problem):
    (tmp_path / "results.json").write_text(json.dumps({"setup": {}, "trials": {"t": trial}}))
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        ResultsFile(str(tmp_path / "results.json"), {})


def test_a_bare_nan_in_results_json_is_refused_and_a_nan_trial_never_ranks_first(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"setup": {}, "trials": {"t": {"params": {"a": 1}, "accuracy": NaN, "loss": 1.0}}}')
    with pytest.raises(ConfigError, match="a bare NaN, which is not JSON"):
        ResultsFile(str(path), {})
    store = ResultsFile(str(tmp_path / "new.json"), {})
    store.trials = {"nan": {"params": {"a": 1}, "accuracy": float("nan"), "loss": 0.1},
                    "good": {"params": {"a": 2}, "accuracy": 0.5, "loss": 1.0}}
    assert [record["params"]["a"] for record in store.ranked()] == [2, 1]


@pytest.mark.parametrize("config, message", [
    ({"cluster": {"worker": "127.0.0.1:2222"}, "task": {"type": "worker", "index": 0}},
     "cluster.worker must be a list of \"host:port\" strings, got str"),
    ({"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "chief", "index": 0}},
     "task type 'chief' is not a job of its cluster (worker)"),
    ({"cluster": {"worker": ["not a host:2222"]}, "task": {"type": "worker", "index": 0}},
     "does not start with a host name or an IP address"),
    ({"cluster": {"worker": ["127.0.0.1:99999"]}, "task": {"type": "worker", "index": 0}}, "has no port in 1..65535"),
    ({"cluster": {"worker": ["999.1.1.1:2222"]}, "task": {"type": "worker", "index": 0}},
     "does not start with a host name or an IP address"),
])
def test_a_tf_config_that_cannot_work_is_refused_in_one_line(config, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        cluster.check(json.dumps(config))


def test_a_tf_config_whose_port_is_taken_here_is_refused():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} here is taken"):
            cluster.check(json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"index": 0}}))


def run(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


@pytest.mark.parametrize("command, status, fragment", [
    (["-m", "engine.tour", "--output_dir=/dev/null/tour"], 2, "--output_dir /dev/null/tour is not writable"),
    (["-m", "engine.distribute.launch", "--log_dir=/dev/null/logs", "--", "python", "-c", "1"], 2,
     "--log_dir /dev/null/logs is not writable"),
    (["-m", "engine.distribute.launch", "--log_dir={tmp}/logs", "--", "/nonexistent/python"], 2,
     "the command /nonexistent/python is not found"),
    (["-m", "engine.tour.graph_picture", "--hidden=100000000", "--out={tmp}/graph"], 2, "parameters and needs about"),
    (["-m", "engine.tour.graph_picture", "--out=/dev/null/graph"], 2, "--out /dev/null/graph is not writable"),
    (["-m", "bench.report", "--quick", "--out=/dev/null/bench"], 2, "--out /dev/null/bench is not writable"),
    (["train.py", "--dataset=mnist:99.0.0", "--tfds_dir={tmp}/tfds", "--output_dir={tmp}/out"], 2,
     "Dataset mnist cannot be loaded at version 99.0.0"),
    (["train.py", "--dataset=fashion_mnist/bogus", "--tfds_dir={tmp}/tfds", "--output_dir={tmp}/out"], 2,
     "BuilderConfig bogus not found"),
    (["train.py", "--learning_rate=1e-300"], 2, "below float32's smallest normal number"),
    (["train.py", "--momentum=0.99999999"], 2, "it rounds to 1.0 in float32"),
])
def test_a_listed_failure_is_one_line_and_its_exit_status(tmp_path, command, status, fragment):
    started = time.monotonic()
    result = run(*[part.format(tmp=tmp_path) for part in command])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert fragment in lines[0], lines[0]
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists() and not (tmp_path / "logs").exists()


def test_sigterm_while_the_data_loads_is_one_line_143_and_leaves_no_directory(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "train.py", f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={out}",
                                "--epochs=1", "--hidden=8"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in process.stdout:  # Fashion-MNIST takes seconds to prepare: SIGTERM lands in it
        if line.startswith("Preparing fashion_mnist"):
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            break
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines() == [stderr.strip()] and "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_multi_worker_run_whose_peer_never_comes_ends_by_its_deadline_naming_it(tmp_path, mnist_t10k_dir):
    from engine.distribute.launch import free_ports, tf_config

    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    started = time.monotonic()
    result = run("train.py", "--strategy=multi_worker", "--collective_timeout=5", "--dataset=mnist",
                 f"--data_dir={mnist_t10k_dir}", f"--tfds_dir={tmp_path / 'tfds'}", f"--output_dir={tmp_path / 'out'}",
                 env={"TF_CONFIG": tf_config(addresses, 0)}, timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 60, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"train.py: error: worker 1 ({addresses[1]}) never came: the cluster did not assemble within 5 s "
        "(--collective_timeout); start every worker TF_CONFIG names, with the same cluster, or check their addresses"]


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_parallel_search_takes_its_workers_with_it_and_prints_one_line(tmp_path, signum, status):
    process = subprocess.Popen([sys.executable, "-m", "engine.experiments.search", f"--tfds_dir={tmp_path / 'tfds'}",
                                "--train_subset=2000", "--folds=2", "--hidden", "8", "--epochs", "3", "--jobs=2",
                                f"--output_dir={tmp_path / 'search'}"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in process.stdout:
        if line.startswith("Search:"):
            break
    time.sleep(4)  # the workers are importing TensorFlow or training
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # a terminal's Ctrl-C reaches the whole process group
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    time.sleep(2)
    left = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert process.returncode == status and not left, (left, stderr[-2000:])
    assert stderr.strip().splitlines() == [f"search: stopped by {signum.name}. Finished trials are in results.json: "
                                           "rerun the same command to continue"]
