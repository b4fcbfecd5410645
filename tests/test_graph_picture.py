"""The picture of the training step: grouped by name scope into layers, loss, gradients and update;
drawn by Graphviz; and the whole graph readable back from a TensorBoard event file."""

import os
import shutil

import pytest
import tensorflow as tf

from engine.tour import graph_picture, step_graph
from engine.errors import ConfigError
from engine.tour.graph_groups import group_of
from layers import Add, Dense, Input, Model, mlp


def require_dot():
    """Graphviz is part of the set-up (README, .ci/run): missing in CI is a failure, elsewhere a skip."""
    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is missing in CI: .ci/run must apt-get install graphviz")
        pytest.skip(reason="Graphviz's dot is missing: apt-get install graphviz")


@pytest.mark.parametrize("op_name, group", [
    ("dense_1/MatMul", "dense_1"),
    ("dense_1/MatMul/ReadVariableOp/resource", "dense_1"),
    ("gradient_tape/dense_1/MatMul/MatMul_1", "gradients/dense_1"),
    ("gradients/truediv", "gradients/loss"),
    ("gradients/AddN_2", "gradients/sum of branches"),
    ("update/AssignSubVariableOp_3", "update"),
    ("images", "images"),
])
def test_ops_are_grouped_by_their_first_name_scope_backward_ops_by_the_layer(op_name, group):
    assert group_of(op_name) == group


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    require_dot()
    model = mlp((8, 4), 10)
    out = tmp_path_factory.mktemp("graph")
    return model, step_graph.draw_training_step(model, (28, 28), str(out))


def test_the_picture_shows_each_layer_forward_and_backward_the_loss_and_the_update(drawn):
    model, paths = drawn
    flatten, first, second, last = (layer.name for layer in model.layers)
    svg = open(paths["svg"]).read()
    for box in [flatten, f"{first}", "Dense(8, relu)", "Dense(4, relu)", "Dense(10, softmax)", "loss",
                f"gradients/{first}", f"gradients/{second}", f"gradients/{last}", "gradients/loss", "update"]:
        assert f">{box}<" in svg or f">{box} " in svg, f"no box {box!r} in the SVG"
    dot = open(paths["dot"]).read()
    assert f'"{first}" -> "{second}";' in dot and f'"{second}" -> "{last}";' in dot, "the forward chain"
    assert f'"gradients/{last}" -> "gradients/{second}";' in dot, "backprop runs the chain in reverse"
    assert f'"update" -> "{first}" [style=dashed' in dot, "the update writes the first layer's weights"
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_tensorboard_event_file_holds_the_whole_step_graph(drawn):
    model, paths = drawn
    [event_file] = tf.io.gfile.glob(os.path.join(paths["tensorboard"], "events.out.tfevents.*"))
    graphs = [tf.compat.v1.GraphDef.FromString(event.graph_def)
              for event in tf.compat.v1.train.summary_iterator(event_file) if event.graph_def]
    assert len(graphs) == 1
    names = {node.name for node in graphs[0].node}
    first = model.layers[1].name
    assert {f"{first}/MatMul", f"gradient_tape/{first}/MatMul/MatMul", "loss/Log", "update/AssignSubVariableOp"} <= names
    assert len(names) > 150, "the full graph, not the grouped picture"


def test_a_functional_model_with_a_skip_connection_is_drawn_with_its_merge(tmp_path):
    inputs = Input((6,))
    hidden = Dense(4, activation="relu")(inputs)
    residual = Add()([hidden, Dense(4, activation="relu")(hidden)])
    model = Model(inputs, Dense(3, activation="softmax")(residual))
    paths = step_graph.draw_training_step(model, (6,), str(tmp_path), formats=())
    first, second, add, last = (layer.name for layer in model.layers)
    dot = open(paths["dot"]).read()
    branches = "gradients/sum of branches"  # h's gradient: through the block plus around it
    for edge in [(first, add), (second, add), (add, last), (f"gradients/{add}", f"gradients/{second}"),
                 (f"gradients/{add}", branches), (f"gradients/{second}", branches), (branches, f"gradients/{first}")]:
        assert '"%s" -> "%s";' % edge in dot, edge
    assert sorted(paths) == ["dot", "tensorboard"]


def test_without_graphviz_it_writes_the_dot_file_and_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ConfigError, match=r"Graphviz's `dot` is not installed, .*: apt-get install graphviz"):
        step_graph.draw_training_step(mlp((4,), 10), (28, 28), str(tmp_path))
    assert (tmp_path / "training_step.dot").exists() and (tmp_path / "tensorboard").is_dir()


def test_the_command_line_draws_the_mlp_and_rejects_bad_flags(tmp_path, capsys):
    require_dot()
    assert graph_picture.main(["graph_picture", f"--out={tmp_path}", "--hidden=5"]) == 0
    assert "Dense(5, relu)" in (tmp_path / "training_step.svg").read_text()
    assert graph_picture.main(["graph_picture", "--hidden=5,x"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "python -m engine.tour.graph_picture: error: flag --hidden=5,x: expected a comma-separated list of positive "
        "integers like 256,128"]
