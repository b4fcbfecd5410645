"""The red team's probes (tests/red_team.py) as tests: each must PASS, in real processes.

The probes refused before TensorFlow is imported take about a second each and run by default;
the others train, export or search in several processes and are marked slow
(`python -m pytest tests/test_red_team.py -m slow`, or `python tests/red_team.py` for the table).
"""

from pathlib import Path

import pytest

from tests import red_team

FAST = {"negative_seed", "unusable_tensorboard_dir", "unusable_tfds_dir", "unusable_export_dir",
        "resume_from_nothing", "long_error_line", "checkpoints_is_a_file", "checkpoints_is_a_link",
        "link_inside_checkpoints", "tilde_in_an_output_path", "dataset_with_a_dash", "dataset_empty",
        "learning_rate_inf", "learning_rate_zero_in_float32", "momentum_one_in_float32", "search_negative_seed",
        "tour_unwritable_output_dir", "launch_unwritable_log_dir", "launch_missing_command",
        "tf_config_workers_a_string", "tf_config_chief_absent", "tf_config_not_a_host", "tf_config_port_taken",
        "graph_picture_names_its_own_flags", "long_output_path", "home_unwritable_without_tfds_dir",
        "predict_help_says_to_trust_the_model"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, fashion_mnist_dir):
    """The red team trains on Fashion-MNIST (conftest's fixture says what to install if it is missing)."""
    return red_team.Lab(tmp_path_factory.mktemp("red_team"))


@pytest.mark.parametrize("name", [name if name in FAST else pytest.param(name, marks=pytest.mark.slow)
                                  for name in red_team.PROBES])
def test_the_probe_passes(lab, name):
    outcome = red_team.PROBES[name](lab)
    if outcome.verdict == "SKIP":
        pytest.skip(reason=f"this machine cannot stage the probe: {outcome.detail}")
    assert outcome.verdict == "PASS", outcome.detail


def test_every_probe_is_of_exactly_one_kind_and_every_kind_has_a_probe():
    named = [name for names in red_team.KINDS.values() for name in names]
    assert sorted(named) == sorted(red_team.PROBES), "a probe of no kind or of two, or a kind naming no probe"
    assert all(red_team.KINDS.values()), "a kind without a probe"


def test_the_readme_says_how_many_probes_and_kinds_the_red_team_tries():
    readme = " ".join((Path(red_team.REPO) / "README.md").read_text().split())  # lines wrap anywhere
    assert f"That is {len(red_team.PROBES)} probes of {len(red_team.KINDS)} kinds" in readme
