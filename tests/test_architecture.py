"""The folders show the architecture: a small core, layers on top of it, rings around both.

- The core is the modules directly in `engine/` and the `engine/optimizers/` package (at most 16
  parts, one concept each): the math and its backward rules, the gradients (tape and manual) and
  their numerical check, the step, the trainer, the execution modes, the optimizers (their base
  and one file per optimizer, since each rule is a page of its own). They import only the
  standard library, numpy, tensorflow and each other.
- `layers/` is what a model is made of: it imports only the core and itself.
- The rings are the subpackages of `engine/`, nothing in the core or in `layers/` imports a
  ring, and the rings stand in levels (`RING_LEVELS`): a ring imports the core, `layers/`,
  itself and rings of lower levels only, never one of its own level or above. So no import
  runs back up and no two rings import each other, directly or around a cycle:

  1. `run` — what every program uses: settings, the main boundary, checkpoints, writes;
  2. `data`, `distribute`, `compare` — data sets, tf.distribute, the Keras instrument;
  3. `deploy`, `experiments` — export and predict (reading IDX files), the search (loading data);
  4. `tour` — the course, which shows every ring below it;
  5. `app` — the application: the job `train.py` drives and `--compare_keras`.

Read from the source with `ast`, so a lazy import inside a function counts as much as one at
the top of a file.
"""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CORE_PACKAGES = ("optimizers",)  # a core concept in several files, each importing as a core module does
CORE = sorted([path.stem for path in (REPO / "engine").glob("*.py")] + list(CORE_PACKAGES))
CORE_FILES = sorted([*(REPO / "engine").glob("*.py"), *(path for package in CORE_PACKAGES
                                                        for path in (REPO / "engine" / package).glob("*.py"))])
RINGS = sorted(path.name for path in (REPO / "engine").iterdir()
               if (path / "__init__.py").is_file() and path.name not in CORE_PACKAGES)
THIRD_PARTY_OF_THE_CORE = {"numpy", "tensorflow"}
RING_LEVELS = {"run": 1, "data": 2, "distribute": 2, "compare": 2, "deploy": 3, "experiments": 3, "tour": 4, "app": 5}


def imported_modules(path: pathlib.Path):
    """Every absolute module name `path` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "engine":  # `from engine import losses`: the names are modules
                yield from (f"engine.{alias.name}" for alias in node.names)
            else:
                yield node.module


def project_part(module: str) -> str:
    """'core', 'ring', 'layers', 'stdlib', 'numpy/tensorflow' or 'other' for an imported module."""
    top, _, rest = module.partition(".")
    if top == "engine":
        return "ring" if rest.split(".")[0] in RINGS else "core"
    if top == "layers":
        return "layers"
    if top in sys.stdlib_module_names or top == "__future__":
        return "stdlib"
    return "numpy/tensorflow" if top in THIRD_PARTY_OF_THE_CORE else "other"


def test_the_core_is_at_most_sixteen_modules_and_the_rings_are_packages():
    assert len(CORE) <= 16, CORE
    assert {"activations", "initializers", "losses", "optimizers", "metrics", "gradients", "gradient_check",
            "training", "execution"} <= set(CORE)
    assert set(RINGS) == set(RING_LEVELS), "every ring has its level"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_a_core_module_imports_only_the_standard_library_numpy_tensorflow_and_the_core(path):
    wrong = [module for module in imported_modules(path)
             if project_part(module) not in ("stdlib", "numpy/tensorflow", "core")]
    assert not wrong, f"{path.relative_to(REPO)} imports {wrong}"


@pytest.mark.parametrize("path", sorted((REPO / "layers").glob("*.py")), ids=lambda path: path.name)
def test_layers_import_only_the_core_and_themselves(path):
    wrong = [module for module in imported_modules(path)
             if project_part(module) not in ("stdlib", "numpy/tensorflow", "core", "layers")]
    assert not wrong, f"layers/{path.name} imports {wrong}"


def ring_of(module: str) -> str:
    """The ring an `engine.*` module belongs to ('' for the core and anything outside engine/)."""
    top, _, rest = module.partition(".")
    ring = rest.split(".")[0]
    return ring if top == "engine" and ring in RINGS else ""


def ring_imports() -> dict:
    """{ring: {ring it imports: [the files that do]}}, read from every file of every ring."""
    found: dict = {ring: {} for ring in RINGS}
    for ring in RINGS:
        for path in sorted((REPO / "engine" / ring).rglob("*.py")):
            for module in imported_modules(path):
                if ring_of(module) and ring_of(module) != ring:
                    found[ring].setdefault(ring_of(module), []).append(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("ring", RINGS)
def test_a_ring_imports_only_rings_of_lower_levels(ring):
    wrong = {other: files for other, files in ring_imports()[ring].items() if RING_LEVELS[other] >= RING_LEVELS[ring]}
    assert not wrong, (f"engine/{ring} (level {RING_LEVELS[ring]}) imports rings of its level or above: "
                       + "; ".join(f"{other} (level {RING_LEVELS[other]}) from {sorted(set(files))}"
                                   for other, files in wrong.items()))


def test_no_cycle_runs_between_the_rings():
    """Said on its own, from the imports alone: the rings' import graph orders topologically."""
    graph = {ring: set(others) for ring, others in ring_imports().items()}
    ordered = []
    while graph:
        free = sorted(ring for ring, others in graph.items() if not others - set(ordered))
        assert free, f"the rings {sorted(graph)} import each other around a cycle: {graph}"
        ordered += free
        graph = {ring: others for ring, others in graph.items() if ring not in free}
    assert ordered[0] == "run", "the utilities import no other ring"


def test_the_ring_rules_catch_an_import_that_runs_back_up(tmp_path, monkeypatch):
    """The checker itself: a lazy import of the job from `run` is found as run -> app."""
    (tmp_path / "engine" / "run").mkdir(parents=True)
    (tmp_path / "engine" / "run" / "__init__.py").write_text("")
    (tmp_path / "engine" / "run" / "late.py").write_text("def f():\n    from engine.app import job\n")
    for ring in RINGS:
        (tmp_path / "engine" / ring).mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert ring_imports()["run"] == {"app": ["engine/run/late.py"]}


def test_the_import_rules_see_a_ring_import_in_a_function_body(tmp_path):
    """The checker itself: a lazy ring import inside a function is found."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from engine.run import job\n    import keras\n")
    assert [project_part(name) for name in imported_modules(module)] == ["ring", "other"]


def test_the_modes_a_flag_accepts_are_the_modes_the_core_runs():
    """engine/run/config.py repeats the modes so a flag is checked before TensorFlow loads."""
    from engine import execution
    from engine.run import config

    assert config.MODES == execution.MODES


def test_the_gradients_a_flag_accepts_are_the_ones_the_core_computes():
    from engine import gradients
    from engine.experiments import search
    from engine.run import config

    assert config.GRADIENTS == gradients.GRADIENTS == tuple(search.FLAGS["gradients"].parser.enum_values)


def source_of(module: str):
    """The file of a project module (a package's __init__.py), or None for a name inside a module."""
    path = REPO.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def project_imports(module: str, seen=None) -> set:
    """Every module `module` imports, following the project's own modules transitively."""
    seen = set() if seen is None else seen
    for name in imported_modules(source_of(module)):
        if name not in seen:
            seen.add(name)
            if project_part(name) in ("core", "ring", "layers") and source_of(name) is not None:
                project_imports(name, seen)
    return seen


def test_a_plain_training_run_does_not_import_the_keras_comparison():
    """The job `train.py` runs without --compare_keras reaches neither Keras nor engine.compare.

    (TensorFlow 2.21 itself imports the `keras` package while it loads, so this is read from the
    project's own imports rather than from `sys.modules`.)"""
    reached = project_imports("engine.app.job")
    assert "engine.training" in reached and "engine.run.checkpoints" in reached, "the walk follows the project"
    assert not [name for name in reached if name.split(".")[0] == "keras" or name.startswith("engine.compare")]


# Library modules import without side effects; the programs' flags live in their entry points.

FLAG_MAKERS = {"new_flag_values", "register_validator", "register_multi_flags_validator"}
NOISE_CALLS = {"set_verbosity", "setLevel", "simplefilter", "filterwarnings", "catch_warnings"}
PROJECT_FILES = sorted([*(REPO / "engine").rglob("*.py"), *(REPO / "layers").glob("*.py"), REPO / "train.py"])


def is_entry_point(tree: ast.Module, path: pathlib.Path) -> bool:
    """A program: a `__main__.py`, or a module ending in `if __name__ == "__main__":`."""
    return path.name == "__main__.py" or any(
        isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__" for node in tree.body)


def called_names(tree: ast.AST):
    """The last part of every called name: `flags.DEFINE_integer(...)` gives 'DEFINE_integer'."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            yield function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ENTRY_POINTS = sorted(module_name(path) for path in PROJECT_FILES
                      if is_entry_point(ast.parse(path.read_text()), path))


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_a_module_imports_everything_at_its_top_and_only_an_entry_point_declares_flags(path):
    tree = ast.parse(path.read_text())
    if path.parent.name == "sections":  # the tour's cells: each imports what it shows, where it shows it
        return
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body  # after the docstring
    first_other = next((index for index, node in enumerate(body) if not isinstance(node, (ast.Import, ast.ImportFrom))),
                       len(body))
    late = [node.lineno for node in body[first_other:] if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not late, f"{path.relative_to(REPO)}: imports below the module's first statement, lines {late}"
    if not is_entry_point(tree, path):
        at_import = [node for node in body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        declared = sorted({name for node in at_import for name in called_names(node)
                           if name.startswith(("DEFINE_", "define_")) or name in FLAG_MAKERS}
                          | {"program.start" for node in at_import for call in ast.walk(node)
                             if isinstance(call, ast.Call) and ast.unparse(call.func) == "program.start"})
        assert not declared, f"{path.relative_to(REPO)} is a library module but declares flags at import: {declared}"


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_nothing_imports_an_entry_point(path):
    """A program's module holds its flags and its body only: what others need of it is a library module."""
    wrong = [module for module in imported_modules(path) if module in ENTRY_POINTS]
    assert not wrong, f"{path.relative_to(REPO)} imports the program {wrong}: import its library module instead"


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_log_noise_is_handled_in_engine_run_quiet_only(path):
    """... and in engine/startup.py, the core's filter on TensorFlow's start-up, which quiet builds on."""
    if path in (REPO / "engine" / "run" / "quiet.py", REPO / "engine" / "startup.py"):
        return
    tree = ast.parse(path.read_text())
    wrong = sorted({name for name in called_names(tree) if name in NOISE_CALLS} |
                   {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and node.value == "TF_CPP_MIN_LOG_LEVEL"})
    assert not wrong, f"{path.relative_to(REPO)} handles log noise itself ({wrong}): call engine.run.quiet"


def test_the_quiet_start_up_is_installed_before_any_project_module_can_import_tensorflow():
    """engine/__init__.py installs the hook (engine/startup.py); layers/ imports `engine` before
    any of its modules, since each of them imports TensorFlow on its first line."""
    engine_init = ast.parse((REPO / "engine" / "__init__.py").read_text())
    assert "install" in set(called_names(engine_init))
    layers_init = ast.parse((REPO / "layers" / "__init__.py").read_text()).body
    first_import = next(node for node in layers_init if isinstance(node, (ast.Import, ast.ImportFrom)))
    assert isinstance(first_import, ast.Import) and first_import.names[0].name == "engine"


def test_the_programs_and_quiet_import_without_tensorflow_or_a_changed_environment():
    """Importing a program's module only declares its flags; importing quiet changes nothing."""
    programs = [name for name in ENTRY_POINTS if name not in ("train", "engine.tour.__main__")]
    assert {"engine.experiments.search", "engine.deploy.predict", "engine.tour.graph_picture"} <= set(programs)
    code = ("import os, sys\n"
            f"import engine.run.quiet, {', '.join(programs)}\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
            "assert 'TF_CPP_MIN_LOG_LEVEL' not in os.environ, 'TF_CPP_MIN_LOG_LEVEL set'\n")
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
