"""The package's layers (docs/layers.md): every import inside keras_hourglass, at the top of a
module or inside a function, goes to the same layer or one below, and no modules import each
other in a circle (issue #39 item 1). A new module must be given its layer here and in the
docs; the Keras-free layers import without Keras."""

import ast
import subprocess

import pytest
from conftest import PYTHON, ROOT

PACKAGE = ROOT / "keras_hourglass"

# Lowest first. docs/layers.md draws the same table. A module is named by its dotted path below
# keras_hourglass; "datasets", "inputs" and "commands" stand for every module of that
# sub-package not named on its own.
LAYERS = [
    (
        "foundation",
        "files geometry skeletons distributed quiet synthetic checkpoints weights presets "
        "network network.codec network.optimizers network.remat inputs.augmentation "
        "evaluation evaluation.metrics training poses deployment labelling",
    ),
    (
        "data",
        "config datasets inputs inputs.cache network.pck_metric evaluation.coco_eval "
        "evaluation.protocols drawing poses.boxes poses.output poses.media",
    ),
    ("model", "network.model"),
    ("deploy", "deployment.core poses.detect poses.framing poses.landmarks poses.tracking"),
    ("inference", "deployment.inference"),
    ("serving", "deployment.saved_model"),
    ("runtimes", "deployment.runtimes"),
    ("exporters", "deployment.export"),
    (
        "applications",
        "pretrained convert training.callbacks training.runs training.loop deployment.loader "
        "poses.estimate poses.estimator poses.demo labelling.frames labelling.project "
        "labelling.app",
    ),
    ("commands", "cli commands"),
]
LAYER = {name: level for level, (_, names) in enumerate(LAYERS) for name in names.split()}
WHOLE_PACKAGES = ("datasets", "inputs", "commands")  # one layer for the modules not named

# The sub-packages by job (issue #49 item 0) and the ones each may import from; each
# __init__'s docstring says the same in words. The top-level modules ("") are the foundation
# and the applications that name shipped models and convert checkpoints.
TOP_LEVEL_MAX = 15
MAY_IMPORT = {
    "network": {""},
    "datasets": {""},
    "inputs": {"", "datasets"},
    "evaluation": {"", "datasets"},
    "deployment": {"", "network", "datasets", "inputs"},
    "poses": {"", "network", "datasets", "deployment", "evaluation"},
    "training": {"", "network", "datasets", "inputs", "evaluation", "deployment"},
    "labelling": {"", "datasets", "poses", "deployment"},
}


def _modules():
    """{dotted name below keras_hourglass: path} of every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = path
    return found


def _resolve(name, modules):
    """The package module an import of `name` (dotted, below keras_hourglass) loads."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def _imports(path, modules):
    """{imported module: first line} of every keras_hourglass import in `path`, function-local
    ones included; the package root (`import keras_hourglass`) as ""."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "keras_hourglass" or name.startswith("keras_hourglass."):
                target = _resolve(name.partition(".")[2], modules)
                found.setdefault(target, node.lineno)
    return found


def _layer(module):
    if module in LAYER:
        return LAYER[module]
    package = module.partition(".")[0]
    return LAYER[package] if package in WHOLE_PACKAGES else None


def _graph():
    modules = _modules()
    return modules, {name: _imports(path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    modules, _ = _graph()
    unplaced = sorted(m for m in modules if _layer(m) is None)
    assert not unplaced, f"give these modules a layer in LAYERS and docs/layers.md: {unplaced}"
    named = {n for _, names in LAYERS for n in names.split()}
    gone = sorted(n for n in named if n not in modules)
    assert not gone, f"LAYERS names modules that no longer exist: {gone}"


PICTURE_NAMES_END = 48  # docs/layers.md's picture: layer, modules (to this column), what


def _package(module):
    """The sub-package a module sits in ("" for the top-level modules)."""
    first = module.partition(".")[0]
    return first if (PACKAGE / first).is_dir() else ""


def test_at_most_15_modules_sit_at_the_top():
    """Issue #49 item 0: the package shows its architecture: a few modules at the top, the
    rest in sub-packages named for their job."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= TOP_LEVEL_MAX, top


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        package = init.parent.name
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if package in ("commands", "weights"):
            assert doc, f"{package}/__init__.py has no docstring"
            continue
        assert "May import" in doc, f"{package}/__init__.py does not say what it may import"
        assert package in MAY_IMPORT, f"give {package} its line in MAY_IMPORT"


def test_subpackages_import_only_what_their_docstring_allows():
    modules, graph = _graph()
    crossing = []
    for module, imported in graph.items():
        package = _package(module)
        if package in ("", "commands", "weights"):
            continue
        for target, line in imported.items():
            other = _package(target)
            if other != package and other not in MAY_IMPORT[package]:
                crossing.append(f"{module}:{line} ({package}) imports {target} ({other or 'top'})")
    assert not crossing, "\n".join(crossing)


def test_docs_picture_places_every_module_as_the_test_does():
    """docs/layers.md draws LAYERS: each layer's row names the modules this test gives it."""
    text = (ROOT / "docs" / "layers.md").read_text()
    picture = text.split("```")[1]
    rows, current = {}, None
    for line in picture.splitlines():
        head = line[:13].strip()
        if head and head != "|":
            current = head
        if current:
            rows[current] = rows.get(current, "") + " " + line[13:PICTURE_NAMES_END]
    for layer, names in LAYERS:
        drawn = set(rows.get(layer, "").replace(",", " ").replace("/*", "").split())
        drawn.discard("commands/*")
        inits = {n for n in names.split() if (PACKAGE / n).is_dir()}  # docstrings only
        missing = set(names.split()) - inits - drawn
        assert not missing, f"docs/layers.md's {layer} row lacks {sorted(missing)}"


def test_no_import_runs_up_the_layers():
    modules, graph = _graph()
    upward = []
    for module, imported in graph.items():
        for target, line in imported.items():
            if module.startswith("commands") or module == "cli":
                continue  # the top: imports anything, the package root included
            if target == "":
                upward.append(f"{module}:{line} imports the package root (everything)")
            elif _layer(target) > _layer(module):
                upward.append(
                    f"{module}:{line} ({LAYERS[_layer(module)][0]}) imports {target} "
                    f"({LAYERS[_layer(target)][0]})"
                )
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    modules, graph = _graph()
    edges = {m: {t for t in imported if t and t != m} for m, imported in graph.items()}
    # Tarjan's strongly connected components: a circle is a component of two or more modules.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert not circles, circles


def test_the_walk_sees_function_local_imports(tmp_path):
    """The checks above would pass vacuously if the walk missed imports inside functions."""
    modules = _modules()
    found = _imports(PACKAGE / "pretrained.py", modules)
    assert "deployment.saved_model" in found and "network.model" in found  # inside functions


@pytest.mark.parametrize(
    "module",
    [
        "deployment.core",
        "presets",
        "files",
        "skeletons",
        "geometry",
        "poses.framing",
        "poses.output",
    ],
)
def test_the_keras_free_modules_import_without_keras(module, python_env):
    code = (
        f"import sys, keras_hourglass.{module}; "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))"
    )
    result = subprocess.run(
        [PYTHON, "-c", code],
        env=dict(python_env, KERAS_HOURGLASS_LAZY="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_no_function_is_over_100_lines():
    """Issue #39 item 4: no function (or method) of the package is over 100 lines, so each reads
    on a screen or two; a longer one is split where its steps are."""
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, long


def test_library_code_logs_and_commands_print():
    """Issue #49 item 6: below the commands (`commands`, and `cli`, their printing helpers) the
    package writes nothing with `print`; it logs (`logging.getLogger(__name__)`), and the
    commands' `cli.configure_logging` shows progress on stdout and warnings on stderr."""
    printing = []
    for name, path in _modules().items():
        if _layer(name) == LAYER["commands"]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{name}:{node.lineno}")
    assert not printing, printing


def test_the_commands_logging_splits_progress_and_warnings(capsys):
    """Under the commands' logging an INFO line goes to stdout and a WARNING to stderr (a note
    the user sees even under -q); -q drops the INFO line."""
    import logging

    from keras_hourglass import cli, quiet
    from keras_hourglass.cli import configure_logging

    log = logging.getLogger("keras_hourglass.somewhere")
    root = logging.getLogger("keras_hourglass")
    saved = (list(root.handlers), root.level, root.propagate, cli._QUIET)
    levels = {name: logging.getLogger(name).level for name in cli.QUIETED_LIBRARIES}
    try:
        configure_logging()
        log.info("progress line")
        log.warning("note: a warning")
        out, err = capsys.readouterr()
        assert out == "progress line\n" and err == "note: a warning\n"
        configure_logging(quiet=True)
        log.info("progress line")
        log.warning("note: a warning")
        out, err = capsys.readouterr()
        assert out == "" and err == "note: a warning\n"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate, cli._QUIET = saved[2], saved[3]
        quiet.set_quiet_progress(saved[3])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


ENTRY_POINTS = {"main", "parse_args", "build_parser"}  # one per command, by convention


def test_no_public_name_is_defined_twice():
    """Issue #49 item 6: a public function or class is defined in one module only (so `grep
    'def name'` finds the one meant); the commands' entry points excepted."""
    where = {}
    for name, path in _modules().items():
        for node in ast.parse(path.read_text()).body:
            defined = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if defined and not node.name.startswith("_") and node.name not in ENTRY_POINTS:
                where.setdefault(node.name, []).append(name)
    twice = {n: places for n, places in where.items() if len(places) > 1}
    assert not twice, twice


def test_no_private_name_crosses_files():
    """Issue #49 item 6: a name with a leading underscore is used only in its own module: not
    imported (`from keras_hourglass.x import _y`) nor reached (`x._y`) from another."""
    modules = _modules()
    crossing = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "keras_hourglass"
            ):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        crossing.append(f"{name}:{node.lineno} imports {node.module}.{a.name}")
                    if f"{node.module}.{a.name}".partition(".")[2] in modules:
                        aliases.add(a.asname or a.name)  # a module imported by name
            elif isinstance(node, ast.Import):
                aliases |= {a.asname or a.name for a in node.names if "keras_hourglass" in a.name}
        for node in ast.walk(tree):
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_")
            if (
                private
                and not node.attr.startswith("__")
                and getattr(node.value, "id", "") in aliases
            ):
                crossing.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not crossing, crossing


def test_the_model_is_the_bottom_and_borrows_its_pose_methods():
    """Issue #49 item 1: `model` imports nothing above the foundation (its layer is below
    deploy, inference and runtimes), and the pose methods it keeps are lent by those floors
    (`model.LENT`), the very functions `kh.estimate_poses` and `kh.crop_predictor` are."""
    import keras_hourglass as kh
    from keras_hourglass.network import model

    imports = _imports(PACKAGE / "network" / "model.py", _modules())
    assert all(_layer(target) == LAYER["files"] for target in imports), imports  # foundation
    floors = ("network.model", "deployment.core", "deployment.inference", "deployment.runtimes")
    assert [LAYER[m] for m in floors] == sorted({LAYER[m] for m in floors})
    assert model.lent("estimate_poses") is kh.estimate_poses  # poses.estimate's
    assert model.lent("crop_predictor") is kh.crop_predictor


def test_the_models_person_box_unit_stays_at_the_edges():
    """Issue #49 item 4: boxes are pixels (`boxes.Box`, its `square()`) from the user to the
    crop; the model's own person-box unit (`person_box_px`) appears only where the model
    defines it, where MPII-style (centre, scale) triples meet a model or an export, and in the
    export description: at most 20 lines of the package."""
    lines = [
        f"{name}:{number}"
        for name, path in _modules().items()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "person_box_px" in line
    ]
    assert len(lines) <= 20, lines
    places = {line.partition(":")[0] for line in lines}
    assert places <= {
        "network.model",
        "deployment.core",
        "deployment.saved_model",
        "poses.estimate",
        "poses.estimator",
        "commands.serving_client",
    }, places
