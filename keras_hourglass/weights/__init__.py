"""The model files that ship with the package (keras_hourglass.pretrained reads index.json)."""
