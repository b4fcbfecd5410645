"""The newcomer's promises: README's commands are the ones CI runs."""

import re

from tests.conftest import REPO


def readme_commands():
    return re.findall(r"```sh\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one_verbatim():
    install_and_train, install_and_test = readme_commands()  # exactly two: one to train, one to test
    assert install_and_train.endswith("python train.py --dataset=fashion_mnist")
    assert install_and_test.endswith("python -m pytest")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines, "the test command in .ci/run must be README's, character for character"
