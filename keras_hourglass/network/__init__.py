"""The network and what it is trained with: the stacked hourglass (`model`), the heatmap codec
(`codec`), the reference RMSprop (`optimizers`), PCK as a Keras metric (`pck_metric`) and
rematerialisation by stack (`remat`).

May import: the package's foundation modules (`geometry`, `skeletons`, `quiet`, ...) and each
other; nothing from datasets, inputs, training, evaluation, poses or deployment. The model's
`estimate_poses` and `predict_keypoints` are lent to it from above (`model.LENT`).
This `__init__` imports nothing, so `keras_hourglass.network.codec` loads alone.
"""
