"""Evaluation: the PCK / PCKh protocols, their tables, plots and prediction files (`protocols`),
the metrics as NumPy functions (`metrics`) and COCO's AP through pycocotools (`coco_eval`).

May import: the foundation (`drawing` for the plots) and `datasets` (ground truth); no Keras
model code, nothing of the pose pipeline (which imports `metrics.person_scores` from here).
This `__init__` imports nothing.
"""
