# Sourced by the prepared GPU scripts: the environment of a device call (../shared/GPU.md).
# The GPU machines have no Keras: install the carried wheels into /tmp/site, skipped where the
# pinned Keras is already importable (so the same scripts run on the CPU machine).
keras_pin=$(grep -Eio '^keras==[0-9.]+' requirements.txt | cut -d= -f3)
if ! KERAS_BACKEND=jax python3 -c "import keras, sys; sys.exit(keras.__version__ != '$keras_pin')" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
