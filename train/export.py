"""`hourglass-export` as a script; the code and its documentation: keras_hourglass/commands/export.py
(`python train/export.py --help`)."""

import sys

import hourglass_commands  # the commands' environment, set before keras_hourglass loads

_command = hourglass_commands.command("export", tensorflow_graphs=True)
from keras_hourglass.commands.export import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.export import main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(hourglass_commands.run(_command))
