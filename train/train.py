"""`hourglass-train` as a script; the code and its documentation: keras_hourglass/commands/train.py
(`python train/train.py --help`)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")  # TensorFlow's start-up noise: quiet.py

from keras_hourglass.commands.train import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
