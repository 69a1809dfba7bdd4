"""`hourglass-evaluate` as a script; the code and its documentation: keras_hourglass/commands/evaluate.py
(`python eval/evaluate.py --help`)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")  # TensorFlow's start-up noise: quiet.py

from keras_hourglass.commands.evaluate import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.evaluate import main  # noqa: E402

if __name__ == "__main__":
    main()
    sys.exit(0)
