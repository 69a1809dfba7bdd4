"""`hourglass-serve-client` as a script; the code and its documentation: keras_hourglass/commands/serving_client.py
(`python eval/serving_client.py --help`)."""

import sys

import hourglass_commands  # the commands' environment, set before keras_hourglass loads

_command = hourglass_commands.command("serving_client", tensorflow_graphs=True)
from keras_hourglass.commands.serving_client import *  # noqa: E402, F403  (what tests and users import)
from keras_hourglass.commands.serving_client import main  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(hourglass_commands.run(_command))
