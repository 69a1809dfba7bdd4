"""Training as the paper does it: the recipe and its `fit` (`loop`), the run's callbacks
(checkpoints written atomically, the plateau schedule, validation PCK: `callbacks`) and the
run folder that resumes after a kill (`runs`). The settings table (`keras_hourglass.config`)
and the multi-process layout (`keras_hourglass.distributed`) sit in the foundation, since the
input pipelines read them too.

May import: the foundation, `network`, `datasets`, `inputs`, `evaluation` (the validation
tables) and `deployment.inference` (the paper's crop path for validation); never `poses`
nor the commands.
This `__init__` imports nothing.
"""
