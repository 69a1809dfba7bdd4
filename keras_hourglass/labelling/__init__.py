"""Labelling your own keypoints in the browser (issue #51): a project folder (`project`: the
skeleton, the frames picked from videos and images, the labels in the custom annotation
format, the training rounds), the frames worth labelling (`frames`: k-means on small frames,
uniform, and the model's least confident), and the page's web app (`app`, with its page in
`label_page/`). `hourglass-label PROJECT` serves it (docs/labeling.md).

May import: the foundation, `datasets` (the custom format's reader, image checks) and `poses`
(photos and video read, the pose loop that pre-fills frames with a trained model); training
runs as its own `hourglass-train` process, so nothing of `training` is imported.
This `__init__` imports nothing.
"""
