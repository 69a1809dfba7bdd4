"""`hourglass-demo` as a script; the code and its documentation: keras_hourglass/commands/demo.py
(`python eval/demo.py --help`)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")  # TensorFlow's start-up noise: quiet.py
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # SavedModels are TensorFlow graphs

# The flags are parsed before Keras loads (--help at once): keras_hourglass/__init__.py
os.environ["KERAS_HOURGLASS_LAZY"] = "1"
from keras_hourglass.commands.demo import *  # noqa: E402, F403
from keras_hourglass.commands.demo import main  # noqa: E402

os.environ.pop("KERAS_HOURGLASS_LAZY", None)

if __name__ == "__main__":
    from keras_hourglass.cli import run_main

    sys.exit(run_main(main))
