"""`hourglass-demo` as a script; the code and its documentation: keras_hourglass/commands/demo.py
(`python eval/demo.py --help`)."""

import sys

import hourglass_commands  # the commands' environment, set before keras_hourglass loads

_command = hourglass_commands.command("demo", tensorflow_graphs=True)
from keras_hourglass.commands.demo import *  # noqa: E402, F403
from keras_hourglass.commands.demo import main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(hourglass_commands.run(_command))
