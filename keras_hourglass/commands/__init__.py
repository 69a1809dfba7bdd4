"""The commands' code: `hourglass-train` (train/train.py), `hourglass-evaluate`
(eval/evaluate.py), `hourglass-export`, `hourglass-predict`, `hourglass-serve-client`,
`hourglass-convert`, `hourglass-prepare`, `hourglass-show-batch`, `hourglass-demo`
(eval/demo.py). Each module's `main(argv)`
is the command; the console commands (`hourglass_commands`) and the scripts in train/ and
eval/ set the environment (quiet TensorFlow start-up, the backend for SavedModels) and call
it."""
