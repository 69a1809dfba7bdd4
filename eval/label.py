"""`hourglass-label` as a script; the code and its documentation: keras_hourglass/commands/label.py
(`python eval/label.py --help`)."""

import sys

import hourglass_commands  # the commands' environment, set before keras_hourglass loads

_command = hourglass_commands.command("label")
from keras_hourglass.commands.label import *  # noqa: E402, F403
from keras_hourglass.commands.label import main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(hourglass_commands.run(_command))
