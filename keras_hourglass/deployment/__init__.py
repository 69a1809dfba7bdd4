"""Where a trained network runs and how it leaves the project: the crop predictors (Keras:
`inference`; OpenVINO: `core`; a SavedModel's `predict_crops`: `saved_model`), the choice of
runtime and precision with the OpenVINO conversion and its cache (`runtimes`), the exporters
(`export`: one `export_model(model, path, format)`, a writer per format) and the one loader
of every format they write (`loader.load_predictor` / `load_model`). `core` is the part that
needs neither Keras nor TensorFlow (an exported `.xml` runs with it alone).

May import: the foundation, `network`, `datasets` and `inputs` (calibration crops, the
SavedModel's in-graph crop); never `poses` (the pose layer sits above and uses it), training
or the commands.
This `__init__` imports nothing.
"""
