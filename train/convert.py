"""`hourglass-convert` as a script; the code and its documentation: keras_hourglass/commands/convert.py
(`python train/convert.py --help`)."""

import sys

import hourglass_commands  # the commands' environment, set before keras_hourglass loads

_command = hourglass_commands.command("convert")
from keras_hourglass.commands.convert import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.convert import main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(hourglass_commands.run(_command))
