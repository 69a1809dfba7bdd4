import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The suite compares inference paths to each other exactly (float32 Keras everywhere); the
# OpenVINO runtime that "auto" picks for users is tested on its own (tests/test_runtimes.py), with
# this variable removed where "auto" itself is the subject.
os.environ.setdefault("KERAS_HOURGLASS_RUNTIME", "keras")
# The tests' own Keras home: the synthetic figures they render (the default synthetic data
# folder is <KERAS_HOME>/datasets/...) go to a temporary folder kept between test sessions, never
# into the user's ~/.keras. Set before Keras is imported; subprocesses inherit it.
os.environ["KERAS_HOME"] = os.path.join(
    tempfile.gettempdir(), f"keras-hourglass-tests-{os.getuid()}"
)

# Files derived from models (OpenVINO conversions, shipped models' SavedModels) go to the tests'
# own cache folder, never the user's ~/.cache/keras_hourglass.
os.environ.setdefault(
    "KERAS_HOURGLASS_CACHE",
    os.path.join(tempfile.gettempdir(), f"keras-hourglass-cache-{os.getuid()}"),
)

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """../shared/data, or skip when it is absent (a user's clone has no ../shared)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def python_env():
    """Environment for subprocesses: this interpreter, quiet TensorFlow, the repo importable."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable


def benchmark_module(name):
    """benchmarks/<name>.py imported as a module (the benchmarks folder on sys.path, as when
    the script runs), for tests of a benchmark's own scoring."""
    import importlib.util

    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_on(backend, script, env, timeout=600):
    """Runs Python `script` on Keras `backend` in a fresh process; the words of its output."""
    import subprocess

    result = subprocess.run(
        [PYTHON, "-c", script],
        env=dict(env, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def run_command(script, args, env, timeout=600, **kwargs):
    """Runs one of the project's command scripts (e.g. "train/train.py") as a user would."""
    import subprocess

    return subprocess.run(
        [PYTHON, str(ROOT / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


# Annotated joints per MPII joint in valid.h5's 2,958 people, as ../shared/data/mpii_annot/SOURCE.md
# lists them.
MPII_VALID_ANNOTATED = [2115, 2485, 2889, 2888, 2478, 2119, 2878, 2932, 2932, 2932, 2928, 2935]
MPII_VALID_ANNOTATED += [2944, 2944, 2932, 2909]


def tiny_train_flags(stacks=2, verbose=0):
    """train/train.py flags of the tests' tiny model: `stacks` stacks of 16 features at depth 2
    on 32 px crops, batches of 4, 8 synthetic validation figures."""
    return [
        *("--stacks", str(stacks), "--filters", "16", "--depth", "2", "--input-size", "32"),
        *("--batch-size", "4", "--val-samples", "8", "--verbose", str(verbose)),
    ]


def randomize_weights(model, rng, scale=0.2):
    """Random weights everywhere (the zero-initialised heads and batch-norm statistics too), so
    that comparisons of outputs cannot pass on zeros."""
    import numpy as np

    for w in model.weights:
        value = rng.normal(0, scale, w.shape).astype("float32")
        w.assign(np.abs(value) + 0.5 if "variance" in w.path else value)


def assert_same_or_tied(got, want, heatmaps, to_heatmap, atol=1e-3, tie=1e-4, min_same=0.9):
    """Keypoints `got` and `want` (N, K, 2) agree to `atol`, except where a random-weight model's
    heatmap (N, h, w, K) has two maxima within `tie` of each other (flat plateaus, e.g. where a
    crop runs past its image into constant zeros): float rounding of two computations may pick
    either, so there both picks must be maxima. `to_heatmap(points, n)` maps person n's points to
    heatmap pixels. At least `min_same` of the joints must agree outright."""
    import numpy as np

    got, want, heatmaps = (np.asarray(a, np.float64) for a in (got, want, heatmaps))
    same = np.all(np.abs(got - want) <= atol, axis=-1)
    assert same.mean() >= min_same, (same.mean(), np.argwhere(~same)[:10].tolist())
    h, w = heatmaps.shape[1:3]
    for n, k in np.argwhere(~same):
        peak = heatmaps[n, ..., k].max()
        for point in (got[n, k], want[n, k]):
            x, y = np.clip(np.round(to_heatmap(point, n)).astype(int), 0, [w - 1, h - 1])
            assert heatmaps[n, y, x, k] >= peak - tie, (n, k, heatmaps[n, y, x, k], peak)


class PageServer:
    """A page's server (`eval/demo.py`, `eval/label.py`) run with `--port 0` in a subprocess in
    `folder`; `url` once it printed "Open http://...", its output in `lines`."""

    def __init__(self, script, folder, env, *flags):
        import subprocess
        import threading
        import time

        self.folder = folder
        self.process = subprocess.Popen(
            [PYTHON, str(ROOT / script), *flags, "--port", "0"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines, started = [], threading.Event()

        def read():  # the output, line by line, until the process ends
            for line in self.process.stdout:
                self.lines.append(line)
                if line.startswith("Open http://"):
                    self.url = line.split()[1].rstrip("/")
                    started.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + 240
        while not started.wait(1.0) and time.time() < deadline and self.process.poll() is None:
            pass
        if not started.is_set():
            self.stop()
            raise AssertionError(f"{script} did not start:\n" + "".join(self.lines))

    def get(self, path):
        import urllib.request

        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return response.status, response.read()

    def send(self, method, path, body=None):
        """(status, JSON) of a request with a JSON body."""
        import json
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(x for x in f if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def stop(self):
        import subprocess

        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def chromium_or_skip(height=1600):
    """Debian's headless Chromium driven by Selenium, 1280 x `height` pixels, or skip saying why
    (the page tests: demo, labelling)."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "Chromium and its driver are not installed (apt-get install chromium "
            "chromium-driver; .ci/run installs them where it can)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size=1280,{height}")
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service(driver), options=options)


def wait_until(browser, condition, timeout=120, poll=0.5):
    """`condition(browser)` once it is truthy, within `timeout` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=poll).until(lambda b: condition(b))
