"""The guided tour in the terminal: the first sections run and print the values they explain (called
in-process; the training sections have their own tests), and the command line checks its flags before
TensorFlow is imported. The notebook rendering is tests/test_tour_notebook.py."""

import re
import subprocess
import sys

import pytest

from engine import tour
from engine.tour.__main__ import main
from tests.conftest import REPO


def printed(section):
    lines = []
    tour.run(section, lines.append)
    return "\n".join(lines)


def test_tensors_of_rank_0_to_3_and_their_shapes():
    text = printed("tensors")
    assert "tf.constant(3.0)  ->  rank 0, shape [], dtype float32" in text
    assert "tf.range(6.0)  ->  rank 1, shape [6]," in text
    assert "tf.reshape(tf.range(24.0), [6, 4])  ->  rank 2, shape [6, 4]," in text
    assert "tf.zeros([4, 4, 2])  ->  rank 3, shape [4, 4, 2]," in text
    assert "[0, 0] has shape [2], [0, 0, 0] has shape []" in text
    assert "[6, 4] -> [4, 6] -> [24] -> [2, 3, 4]" in text


def test_eager_reductions_print_their_values_at_once():
    text = printed("eager")
    assert "tf.executing_eagerly() -> True" in text
    assert "tf.reduce_mean(x) = 11.5 " in text and "tf.reduce_sum(x) = 276.0 " in text
    assert "tf.reduce_sum(x, axis=0) = [60. 66. 72. 78.]" in text
    assert re.search(r"tf.reduce_mean\(x, axis=1\) = \[ *1.5 +5.5 +9.5 +13.5 +17.5 +21.5\]", text)
    assert "EagerTensor" in text


def test_graph_lists_the_traced_ops_and_runs_the_tf1_session():
    text = printed("graph")
    traced = re.findall(r"^  (\S+): (\w+)$", text, flags=re.MULTILINE)
    assert [kind for _, kind in traced] == ["Placeholder", "Const", "Mean", "Const", "Sum", "Identity", "Identity"]
    assert "graph of 7 ops" in text and "Running the graph on x = 0..23: mean 11.5, sum 276.0" in text
    assert 'built: Tensor("mean:0", shape=(), dtype=float32)' in text
    assert "graph ops: x (Placeholder), Const (Const), mean (Mean), Const_1 (Const), sum (Sum)" in text
    assert "session.run([mean, sum], feed_dict={x: 0..23}) -> mean 11.5, sum 276.0" in text


def test_models_four_ways_same_parameters_same_outputs():
    text = printed("models")
    assert text.count("Total params: 235,146") == 4  # two engine summaries, two Keras ones
    assert "Connected to" in text and "(InputLayer)" in text
    rows = re.findall(r"^  (.+?) +235,146 parameters, max \|output - engine Sequential's\| = (\S+)$", text, re.MULTILINE)
    assert [name for name, _ in rows] == ["engine functional Model", "keras Sequential", "keras Functional"]
    assert all(float(difference) <= 1e-6 for _, difference in rows), rows


def test_the_command_line_runs_the_chosen_sections_in_order(capsys):
    assert main(["tour", "--sections=eager,tensors"]) == 0
    out = capsys.readouterr().out
    assert out.index("=== eager ===") < out.index("=== tensors ===") and "=== graph ===" not in out


def test_an_unknown_flag_is_one_error_line(capsys):
    assert main(["tour", "--section=tensors"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "python -m engine.tour: error: Unknown command line flag 'section'. Did you mean: sections ?"]


def test_the_module_rejects_an_unknown_section_with_one_line_and_exit_2():
    result = subprocess.run([sys.executable, "-m", "engine.tour", "--sections=tensors,lists"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m engine.tour: error: --sections got lists: expected a comma-separated list of "
        f"{', '.join(tour.SECTIONS)}"]


def test_running_an_unknown_section_from_code_names_the_choices():
    with pytest.raises(ValueError, match=rf"unknown tour section 'lists': expected one of {', '.join(tour.SECTIONS)}$"):
        tour.run("lists")


def test_the_terminal_shows_each_explanation_and_code_cell_before_its_output():
    text = printed("eager")
    assert text.index("## 2. Eager execution") < text.index("    x = tf.reshape(tf.range(24.0), [6, 4])") \
        < text.index("tf.reduce_mean(x) = 11.5 ")


def test_help_exits_0_without_importing_tensorflow():
    code = ("import sys; from engine.tour.__main__ import main; status = main(['tour', '--help']); "
            "sys.exit(status if 'tensorflow' not in sys.modules else 3)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--notebook" in result.stdout and "--sections" in result.stdout and "--output_dir" in result.stdout


def test_a_notebook_path_without_ipynb_is_one_error_line(capsys, tmp_path):
    assert main(["tour", f"--notebook={tmp_path / 'course.json'}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"python -m engine.tour: error: --notebook got {tmp_path / 'course.json'}: expected a path ending in .ipynb"]


def test_a_notebook_in_a_missing_directory_is_one_error_line(capsys, tmp_path):
    assert main(["tour", f"--notebook={tmp_path / 'missing' / 'course.ipynb'}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"python -m engine.tour: error: --notebook {tmp_path / 'missing' / 'course.ipynb'}: "
        f"directory {tmp_path / 'missing'} does not exist"]


def test_without_graphviz_the_graph_section_says_what_it_skipped_and_the_tour_goes_on(tmp_path):
    """The picture needs Graphviz's dot; the rest of the section (and every other one) does not."""
    no_dot = tmp_path / "bin"  # a PATH holding only this Python, so `dot` cannot be found
    no_dot.mkdir()
    (no_dot / "python").symlink_to(sys.executable)
    result = subprocess.run([sys.executable, "-m", "engine.tour", "--sections=graph,tensors",
                             f"--output_dir={tmp_path / 'tour'}"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={"PATH": str(no_dot), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    skipped = [line for line in result.stdout.splitlines() if line.startswith("skipped the picture")]
    assert len(skipped) == 1 and "Graphviz's dot is not installed (apt-get install graphviz)" in skipped[0]
    assert (tmp_path / "tour" / "graph" / "training_step.dot").is_file()
    assert any((tmp_path / "tour" / "graph" / "tensorboard").iterdir())
    assert "tf.constant(3.0)  ->  rank 0" in result.stdout, "the next section still ran"
    assert "Traceback" not in result.stderr
