"""The pose pipeline, from a photo or a video frame to people and files: photos and video read
and written (`media`), boxes given from outside (`boxes`), the person detectors (`detect`),
the people re-framed from their pose as in training (`framing`), followed through a video
with track ids (`tracking`), drawn (`keras_hourglass.drawing`, shared with evaluation and
training) and written as JSON, CSV and overlays (`output`); the loop over photos, folders, video and camera (`estimator.PoseEstimator`), the
Python call `estimate_poses` (`estimate`) and the demo page's web app (`demo`, with its page
in `demo_page/`).

May import: the foundation, `datasets` (image checks, records), `network`'s codec,
`evaluation` (the prediction files, COCO's person score) and `deployment` (the loader and the
crop predictors); never training or the commands. Its lower modules (media, boxes, output;
detect, framing, tracking) import no Keras.
This `__init__` imports nothing.
"""
