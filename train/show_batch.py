"""`hourglass-show-batch` as a script; the code and its documentation: keras_hourglass/commands/show_batch.py
(`python train/show_batch.py --help`)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOURGLASS_QUIET", "1")  # TensorFlow's start-up noise: quiet.py

from keras_hourglass.commands.show_batch import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.show_batch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
