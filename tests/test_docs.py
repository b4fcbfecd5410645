"""The newcomer's promises: README's commands are the ones CI runs."""

import re

from tests.conftest import REPO


def readme_commands():
    return re.findall(r"```sh\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one_verbatim():
    install_and_train, install_and_test = readme_commands()  # exactly two: one to train, one to test
    assert install_and_train.endswith("python train.py --dataset=fashion_mnist")
    assert install_and_test.endswith("python -m pytest -n 2 --dist loadfile")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines, "the test command in .ci/run must be README's, character for character"


def reading_order(text: str) -> list:
    """The files of a numbered reading-order list, in order: the first path of each item."""
    return re.findall(r"^\s*\d+\. `?([\w/]+\.py)`?", text, re.M)


def test_readme_and_the_engine_package_give_one_reading_order_starting_with_the_plain_loop():
    readme = (REPO / "README.md").read_text()
    readme = readme[readme.index("**Reading order.**"):readme.index("## How fast")]
    import engine

    order = reading_order(readme)
    assert order == reading_order(engine.__doc__)
    assert order[0] == "engine/tour/sections/loop.py" and "engine/gradients.py" in order
    assert all((REPO / path).is_file() for path in order), order
