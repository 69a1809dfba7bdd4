"""The console commands of keras-hourglass (`hourglass-train`, `hourglass-evaluate`, ...).

Each command's code is in `keras_hourglass.commands`; this launcher sits outside the package
because what it sets must come before `keras_hourglass` (and with it Keras and TensorFlow) is
imported: TensorFlow's start-up noise kept out of the terminal (`keras_hourglass.quiet`), the
flags parsed before Keras loads (`--help` and a bad flag answer at once: KERAS_HOURGLASS_LAZY),
a missing optional dependency said in one line with its extra (`cli.run_main`) and, for the
commands that run SavedModels, the TensorFlow backend unless KERAS_BACKEND says otherwise.
The scripts in train/ and eval/ call the same `command` and `run`: the environment is set here only.
"""

import importlib
import os
import sys


def command(name, tensorflow_graphs=False):
    """The command module `keras_hourglass.commands.<name>`, imported with the environment every
    command starts in (the one place it is set: the console commands and the scripts in train/
    and eval/ call this)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")
    if tensorflow_graphs:  # SavedModels are TensorFlow graphs
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # The command parses its flags before Keras and TensorFlow load (keras_hourglass/__init__.py).
    os.environ["KERAS_HOURGLASS_LAZY"] = "1"
    try:
        return importlib.import_module(f"keras_hourglass.commands.{name}")
    finally:
        os.environ.pop("KERAS_HOURGLASS_LAZY", None)


def run(module):
    """Runs a command module's `main` (`cli.run_main`: a missing optional dependency is one line)."""
    from keras_hourglass.cli import run_main

    return run_main(module.main)


def _run(name, tensorflow_graphs=False):
    return run(command(name, tensorflow_graphs))


def train():
    sys.exit(_run("train"))


def evaluate():
    sys.exit(_run("evaluate"))


def export():
    sys.exit(_run("export", tensorflow_graphs=True))


def predict():
    sys.exit(_run("predict", tensorflow_graphs=True))


def serve_client():
    sys.exit(_run("serving_client", tensorflow_graphs=True))


def convert():
    sys.exit(_run("convert"))


def prepare():
    sys.exit(_run("prepare"))


def show_batch():
    sys.exit(_run("show_batch"))


def demo():
    sys.exit(_run("demo", tensorflow_graphs=True))


def label():
    sys.exit(_run("label"))
