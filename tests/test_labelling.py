"""The labelling page (issue #51): projects on disk, frames worth labelling, the page's API, and
the whole loop in a real browser on a generated video of a known moving figure (label 20
frames by clicks, train, see pre-filled joints, correct one, export)."""

import json
import os
import shutil
import time

import numpy as np
import pytest
from conftest import ROOT, PageServer, chromium_or_skip, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_hourglass.labelling import frames as F
from keras_hourglass.labelling.project import Project, ProjectError

# The synthetic figure's joints the test skeleton names (MPII order in `moving_figure`).
SKELETON = """name: figure
joint_names: [head, thorax, pelvis, left_wrist, right_wrist, left_ankle, right_ankle]
flip_pairs: [[left_wrist, right_wrist], [left_ankle, right_ankle]]
limbs: [[head, thorax], [thorax, pelvis], [thorax, left_wrist], [thorax, right_wrist],
        [pelvis, left_ankle], [pelvis, right_ankle]]
normalizer: [joints, [thorax, pelvis]]
"""
MPII_INDEX = [9, 7, 6, 15, 10, 5, 0]
SIZE = 128


def _video(path, count, seed):
    """A video of the synthetic figure moving (`synthetic.moving_figure`) and its joints."""
    import cv2

    from keras_hourglass.synthetic import moving_figure

    frames, keypoints = moving_figure(count, seed, SIZE)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (SIZE, SIZE))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return keypoints[:, MPII_INDEX]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    (folder / "figure.yaml").write_text(SKELETON)
    truth = {
        "a": _video(folder / "a.mp4", 40, 1),
        "b": _video(folder / "b.mp4", 30, 2),
    }
    return folder, truth


def _labels_of(truth, frame):
    video, index = frame.id.split("/")
    return [[[float(x), float(y), 2] for x, y in truth[video][int(index)]]]


# --- frames worth labelling ----------------------------------------------------------------------


def test_kmeans_picks_distinct_frames_spread_over_both_videos(videos):
    folder, _ = videos
    paths = [str(folder / "a.mp4"), str(folder / "b.mp4")]
    picked = F.pick_frames(paths, 10)
    assert len(picked) == len(set(picked)) == 10
    assert {v for v, _ in picked} == set(paths)
    for video in paths:  # spread in time: no two picks of a video on neighbouring frames
        indices = sorted(i for v, i in picked if v == video)
        assert min(np.diff(indices)) >= 2, indices
    again = F.pick_frames(paths, 5, exclude=picked)
    assert not set(again) & set(picked)
    uniform = F.pick_frames(paths, 6, "uniform")
    assert [i for v, i in uniform if v == paths[0]] == [0, 20, 39]


def test_a_file_that_is_not_a_video_is_one_line_naming_it(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(F.VideoError, match="notes.mp4"):
        F.read_thumbnails(str(tmp_path / "notes.mp4"))
    with pytest.raises(F.VideoError, match="gone.mp4: no such video file"):
        F.read_thumbnails(str(tmp_path / "gone.mp4"))
    with pytest.raises(F.VideoError, match="notes.mp4"):
        F.check_video(str(tmp_path / "notes.mp4"))
    from keras_hourglass.commands import label

    (tmp_path / "figure.yaml").write_text(SKELETON)
    with pytest.raises(SystemExit):  # the command: one line, exit 2, and no project left
        label.main([str(tmp_path / "p"), "--skeleton", str(tmp_path / "figure.yaml"),
                    "--video", str(tmp_path / "notes.mp4")])  # fmt: skip
    assert not (tmp_path / "p").exists()


# --- the project on disk ---------------------------------------------------------------------------


@pytest.fixture
def project(videos, tmp_path):
    folder, _ = videos
    made = Project.create(str(tmp_path / "proj"), str(folder / "figure.yaml"))
    made.add_videos([str(folder / "a.mp4"), str(folder / "b.mp4")])
    made.pick(8)
    return made


def test_labels_are_saved_at_once_in_the_custom_format_training_reads(project, videos):
    from keras_hourglass.datasets import read_custom

    _, truth = videos
    for frame in project.frames[:5]:
        project.set_labels(frame.id, _labels_of(truth, frame))
    half = _labels_of(truth, project.frames[5])
    half[0][3:] = [None, "hidden", None, None]  # three placed, one marked not visible
    project.set_labels(project.frames[5].id, half)
    reopened = Project(project.folder)  # what a closed page or server left on disk
    assert reopened.labels == project.labels and len(reopened.labels) == 6
    assert reopened.labels[project.frames[5].id][0][4] == "hidden"
    records = read_custom(project.path("labels.json"), project.skeleton, project.folder)
    assert len(records) == 6
    np.testing.assert_allclose(
        records[0].keypoints, np.array(_labels_of(truth, project.frames[0]))[0, :, :2]
    )
    complete = project.label_rows(complete_only=True)
    assert len(complete) == 5  # the half-labelled frame is not training data yet
    assert all(os.path.isfile(project.path(f.image)) for f in project.frames)
    mode = os.stat(project.path("labels.json")).st_mode & 0o777
    assert mode == 0o666 & ~_umask()  # readable by others as the umask allows


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bad_labels_and_hand_edited_nonsense_are_refused_naming_them(project, videos):
    _, truth = videos
    frame = project.frames[0]
    project.set_labels(frame.id, _labels_of(truth, frame))
    before = open(project.path("labels.json")).read()
    for bad, message in [
        ([[[1, 2, 2]] * 3], "expected 7 joints"),
        ([], "expected 1 individual"),
        ([[["x", 2, 2]] + [None] * 6], "individual 0"),
        ([[[1.0, 2.0, 7]] + [None] * 6], "expected \\[x, y, 1 or 2\\]"),
    ]:
        with pytest.raises(ProjectError, match=message):
            project.set_labels(frame.id, bad)
    with pytest.raises(ProjectError, match="'zz/000001': not one of the project's frames"):
        project.set_labels("zz/000001", _labels_of(truth, frame))
    assert open(project.path("labels.json")).read() == before  # nothing half-saved
    rows = json.loads(before)
    rows[0]["keypoints"] = rows[0]["keypoints"][:4]  # a hand edit into nonsense
    (open(project.path("labels.json"), "w")).write(json.dumps(rows))
    with pytest.raises(ProjectError, match="labels.json, record 0: 4 joints, the skeleton has 7"):
        Project(project.folder)
    open(project.path("labels.json"), "w").write("[{")
    with pytest.raises(ProjectError, match="labels.json: cannot read the labels"):
        Project(project.folder)
    open(project.path("skeleton.yaml"), "w").write("joint_names: [a, a]\n")
    with pytest.raises(ProjectError, match="skeleton.yaml"):
        Project(project.folder)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-5, 500)
        | st.floats(allow_nan=True)
        | st.text(max_size=4),
        lambda inner: st.lists(inner, max_size=8),
        max_leaves=40,
    )
)
def test_any_labels_payload_is_saved_whole_or_refused_in_one_line(project, body):
    """Fuzz the page's PUT body: either the labels are saved and read back equal, or a
    ProjectError says why and labels.json is as it was."""
    frame = project.frames[0].id
    before = (
        open(project.path("labels.json")).read()
        if os.path.exists(project.path("labels.json"))
        else None
    )
    try:
        saved = project.set_labels(frame, body)
    except ProjectError as error:
        assert "\n" not in str(error)
        after = open(project.path("labels.json")).read() if before is not None else None
        assert after == before
        return
    assert Project(project.folder).labels.get(frame, [None]) == saved


def test_photos_are_frames_as_they_are(project, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (40, 30), (200, 10, 10)).save(photos / name)
    (photos / "notes.txt").write_text("not a photo")
    new = project.add_images([str(photos)])
    assert [f.id for f in new] == ["images/a", "images/b"] and new[0].source == "image"
    assert os.path.isfile(project.path(new[1].image))
    assert project.add_images([str(photos / "a.jpg")]) == []  # added once
    (photos / "cut.jpg").write_bytes((photos / "a.jpg").read_bytes()[:60])
    with pytest.raises(ProjectError, match="cut.jpg"):
        project.add_images([str(photos / "cut.jpg")])
    project.set_labels("images/a", [[[10.0, 10.0, 2]] * 7])
    assert Project(project.folder).labels["images/a"][0][0] == [10.0, 10.0, 2]


def test_several_individuals_a_frame_are_rows_the_custom_reader_reads(videos, tmp_path):
    from keras_hourglass.datasets import read_custom

    folder, truth = videos
    pair = Project.create(str(tmp_path / "pair"), str(folder / "figure.yaml"), individuals=2)
    pair.add_videos([str(folder / "a.mp4")])
    (frame,) = pair.pick(1)
    one = _labels_of(truth, frame)[0]
    other = [[x + 30.0, y, v] for x, y, v in one]
    pair.set_labels(frame.id, [one, None])  # the second not labelled yet
    assert [r["individual"] for r in pair.label_rows()] == [0]
    pair.set_labels(frame.id, [one, other])
    rows = Project(pair.folder).label_rows()
    assert [r["individual"] for r in rows] == [0, 1] and rows[0]["image"] == rows[1]["image"]
    records = read_custom(pair.path("labels.json"), pair.skeleton, pair.folder)
    assert len(records) == 2
    with pytest.raises(ProjectError, match="expected 2 individual"):
        pair.set_labels(frame.id, [one])


def test_export_writes_custom_json_coco_and_a_csv_per_video(project, videos):
    _, truth = videos
    for frame in project.frames:
        project.set_labels(frame.id, _labels_of(truth, frame))
    written = project.export()
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["a.csv", "b.csv", "coco.json", "labels.json"]
    coco = json.loads(open(project.path("export/coco.json")).read())
    assert coco["categories"][0]["keypoints"] == list(project.skeleton.joint_names)
    assert len(coco["annotations"]) == len(project.frames)
    first = coco["annotations"][0]
    assert first["num_keypoints"] == 7 and len(first["keypoints"]) == 21
    assert coco["images"][0]["width"] == SIZE
    import pandas as pd

    table = pd.read_csv(project.path("export/a.csv"))
    a_frames = [f for f in project.frames if f.id.startswith("a/")]
    assert list(table["frame"]) == sorted(f.index for f in a_frames)
    assert table["head_x"].iloc[0] == pytest.approx(truth["a"][a_frames[0].index][0][0], abs=0.01)


# --- the loop in a real browser --------------------------------------------------------------------


def _browser_or_skip():
    return chromium_or_skip(1200)  # the whole page: no scrolling


def _wait(browser, condition, timeout=60):
    return wait_until(browser, condition, timeout, poll=0.1)


def _state(browser):
    return browser.execute_script(
        "const s = window.labelState; return {frame: s.frame, scale: s.scale, offset: s.offset,"
        " pending: s.pending, labels: s.labels, prediction: s.prediction, joint: s.joint,"
        " loaded: !!s.image && s.image.complete, id: s.info && s.info.frames[s.frame] &&"
        " s.info.frames[s.frame].id, count: s.info ? s.info.frames.length : 0}"
    )


class Clicks:
    """Mouse clicks on the page, counted."""

    def __init__(self, browser):
        from selenium.webdriver.common.action_chains import ActionChains

        self.browser, self.count, self.chains = browser, 0, ActionChains
        self.canvas = browser.find_element("id", "canvas")
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", self.canvas)

    def at(self, state, x, y):
        """A click on the canvas where the image's pixel (x, y) is shown."""
        sx = state["offset"][0] + state["scale"] * x - self.canvas.size["width"] / 2
        sy = state["offset"][1] + state["scale"] * y - self.canvas.size["height"] / 2
        self.chains(self.browser).move_to_element_with_offset(self.canvas, sx, sy).click().perform()
        self.count += 1

    def drag(self, state, start, end):
        size = self.canvas.size
        a = [
            state["offset"][i] + state["scale"] * start[i] - size[k] / 2
            for i, k in ((0, "width"), (1, "height"))
        ]
        b = [
            state["offset"][i] + state["scale"] * end[i] - size[k] / 2
            for i, k in ((0, "width"), (1, "height"))
        ]
        self.chains(self.browser).move_to_element_with_offset(
            self.canvas, *a
        ).click_and_hold().move_by_offset(b[0] - a[0], b[1] - a[1]).release().perform()
        self.count += 1

    def button(self, name):
        self.browser.find_element("id", name).click()
        self.count += 1


def _click_frame(browser, n):
    """A click on the frame list's n-th frame (the list is drawn again when a job ends)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            browser.find_elements("css selector", "#frames li")[n].click()
            return
        except (StaleElementReferenceException, IndexError):
            time.sleep(0.2)
    raise AssertionError(f"could not click frame {n} of the list")


def test_label_train_prefill_correct_and_export_in_a_browser(videos, tmp_path, python_env):
    """Issue #51's loop, as a user does it: 20 frames picked by k-means from a video of a known
    moving figure, every joint placed by a click (no more clicks than joints plus one a frame,
    each saved at once), a round trained from the page, a new frame pre-filled near the truth,
    one joint corrected by a drag, and the export written."""
    folder, truth = videos
    browser = _browser_or_skip()
    project = tmp_path / "proj"
    server = PageServer(
        "eval/label.py", tmp_path, python_env, str(project), "--skeleton",
        str(folder / "figure.yaml"), "--video", str(folder / "a.mp4"), "--pick", "20",
    )  # fmt: skip
    shots = tmp_path
    try:
        browser.get(server.url + "/")
        _wait(browser, lambda b: _state(b)["count"] == 20 and _state(b)["loaded"])
        clicks = Clicks(browser)
        for n in range(20):
            state = _state(browser)
            assert state["frame"] == n
            index = int(state["id"].split("/")[1])
            for x, y in truth["a"][index]:
                clicks.at(state, float(x), float(y))
            _wait(browser, lambda b: _state(b)["pending"] == 0)
            if n == 3:
                browser.save_screenshot(str(shots / "labeling_placing.png"))
            clicks.button("next")
            if n < 19:
                _wait(browser, lambda b, n=n: _state(b)["frame"] == n + 1 and _state(b)["loaded"])
        assert clicks.count <= 20 * 7 + 20  # joints placed plus one a frame
        saved = Project(str(project))
        assert len(saved.label_rows(complete_only=True)) == 20
        for frame in saved.frames:
            placed = np.array(saved.labels[frame.id][0])[:, :2].astype(float)
            np.testing.assert_allclose(placed, truth["a"][frame.index], atol=0.6)  # screen px / 5
        # One more frame to pre-fill, then a round of training from the page.
        browser.find_element("id", "pick-count").clear()
        browser.find_element("id", "pick-count").send_keys("1")
        browser.find_element("id", "pick").click()
        _wait(browser, lambda b: _state(b)["count"] == 21)
        browser.find_element("id", "epochs").send_keys("8")
        browser.find_element("id", "train").click()
        _wait(browser, lambda b: "train: done" in b.find_element("id", "job-text").text
              or "failed" in b.find_element("id", "job-text").text, timeout=400)  # fmt: skip
        assert "train: done" in browser.find_element("id", "job-text").text, server.lines[-20:]
        assert "hourglass-train --dataset custom" in browser.find_element("id", "job-command").text
        _wait(browser, lambda b: "round 1:" in b.find_element("id", "rounds").text)
        assert "round 1: 20 labels, held-out PCK" in browser.find_element("id", "rounds").text
        _click_frame(browser, 20)
        _wait(
            browser,
            lambda b: _state(b)["frame"] == 20 and _state(b)["prediction"] and _state(b)["loaded"],
        )
        state = _state(browser)
        index = int(state["id"].split("/")[1])
        predicted = np.array(state["prediction"][0])[:, :2]
        error = np.linalg.norm(predicted - truth["a"][index], axis=1)
        assert np.median(error) < 6.0, error  # px of a 128 px frame
        browser.save_screenshot(str(shots / "labeling_prefilled.png"))
        # Correct the worst joint by dragging it onto the truth: the pre-fill becomes labels.
        worst = int(np.argmax(error))
        clicks.drag(state, predicted[worst], truth["a"][index][worst])
        _wait(
            browser,
            lambda b: _state(b)["pending"] == 0 and _state(b)["labels"][0][worst] is not None,
        )
        corrected = Project(str(project)).labels[state["id"]][0]
        assert np.linalg.norm(np.array(corrected[worst][:2]) - truth["a"][index][worst]) < 1.0
        others = [j for j in range(7) if j != worst]
        np.testing.assert_allclose(
            np.array([corrected[j][:2] for j in others]), predicted[others], atol=0.01
        )
        browser.find_element("id", "export").click()
        _wait(browser, lambda b: "exported" in b.find_element("id", "job-text").text)
        rows = json.loads((project / "export/labels.json").read_text())
        assert len(rows) == 21
        assert (project / "export/coco.json").is_file() and (project / "export/a.csv").is_file()
        assert not browser.find_element("id", "error").is_displayed()
        # The model too, in a format hourglass-export writes; then suggestions from the model.
        status, answer = server.send("POST", "/api/export", {"models": ["openvino"]})
        assert status == 200 and "export/model.xml" in answer["written"], answer
        status, _ = server.send("POST", "/api/suggest", {"count": 2})
        assert status == 200
        _wait(browser, lambda b: server.send("GET", "/api/job")[1]["state"] != "running", 120)
        frames = server.send("GET", "/api/project")[1]["frames"]
        assert [f["source"] for f in frames].count("suggested") == 2 and len(frames) == 23
        # A file that is not a video, added on the page: one line naming it.
        (tmp_path / "notes.mp4").write_text("not a video")
        browser.find_element("id", "video-path").send_keys(str(tmp_path / "notes.mp4"))
        browser.find_element("id", "add-video").click()
        _wait(browser, lambda b: b.find_element("id", "error").is_displayed())
        assert "notes.mp4" in browser.find_element("id", "error").text
        # A label file edited by hand into nonsense: one line on the page, nothing saved over it.
        broken = '[{"frame": "a/000001", "individual": 0, "keypoints": [[1, 2]]}]'
        (project / "labels.json").write_text(broken)
        browser.refresh()
        _wait(browser, lambda b: b.find_element("id", "error").is_displayed())
        message = browser.find_element("id", "error").text
        assert "labels.json, record 0" in message and "\n" not in message
        status, answer = server.send("PUT", f"/api/labels/{state['id']}", {"individuals": [None]})
        assert status == 409 and "not saved" in answer["error"]
        assert (project / "labels.json").read_text() == broken
        # So is a skeleton file with an error.
        (project / "labels.json").write_text("[]")
        (project / "skeleton.yaml").write_text("joint_names: [a, a]\n")
        browser.refresh()
        _wait(browser, lambda b: "skeleton.yaml" in b.find_element("id", "error").text)
    finally:
        browser.quit()
        server.stop()
    if os.environ.get("KERAS_HOURGLASS_SCREENSHOTS"):  # tools: refresh docs/images
        for name in ("labeling_placing.png", "labeling_prefilled.png"):
            shutil.copyfile(shots / name, ROOT / "docs/images" / name)
