"""The console commands of keras-hourglass (`hourglass-train`, `hourglass-evaluate`, ...).

Each command's code is in `keras_hourglass.commands`; this launcher sits outside the package
because what it sets must come before `keras_hourglass` (and with it Keras and TensorFlow) is
imported: TensorFlow's start-up noise kept out of the terminal (`keras_hourglass.quiet`) and, for
the commands that run SavedModels, the TensorFlow backend unless KERAS_BACKEND says otherwise.
The scripts in train/ and eval/ do the same before calling the same functions.
"""

import importlib
import os
import sys


def _run(name, tensorflow_graphs=False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")
    if tensorflow_graphs:  # SavedModels are TensorFlow graphs
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    result = importlib.import_module(f"keras_hourglass.commands.{name}").main()
    return result if isinstance(result, int) else 0


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
