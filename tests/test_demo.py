"""The demo page (issue #41): `eval/demo.py` serves the page and its JSON API; the API on real
photos and on bad input; the automatic person boxes; the page in a real browser (Debian's
Chromium driven by Selenium: skipped, with the reason, where it is not installed)."""

import concurrent.futures
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from conftest import PYTHON, ROOT, PageServer, chromium_or_skip, wait_until

PHOTO = ROOT / "docs/images/coco_000000000785.jpg"  # the README's skier (COCO val2017)
SKIER = [281.0, 45.0, 219.0, 347.0]  # COCO's box of the skier


def _detector_or_skip():
    from keras_hourglass.poses.detect import DetectorError, detector_path

    try:
        detector_path()
    except DetectorError as error:
        pytest.skip(f"no person detector here: {error}")


class Server(PageServer):
    """`eval/demo.py --port 0` in a subprocess, started in an empty folder (which must stay
    empty: uploads are never written)."""

    def __init__(self, folder, env, *flags):
        super().__init__("eval/demo.py", folder, env, *flags)

    def post(self, data, query="", content_type="image/jpeg"):
        """(status, JSON) of POST /api/poses. A server that refuses an upload by its
        Content-Length answers 413 and closes while the body is still going out, as nginx
        does: the answer is read after the broken pipe."""
        import http.client
        import urllib.parse

        where = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
        try:
            try:
                connection.request(
                    "POST", f"/api/poses{query}", data, {"Content-Type": content_type}
                )
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before reading all of the body
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    folder = tmp_path_factory.mktemp("demo_cwd")
    # Small limits so the tests can pass them: 1 MB uploads, 300,000 pixels (the skier is
    # 640 x 425 = 272,000).
    server = Server(folder, env, "--max-upload-mb", "1", "--max-image-pixels", "300000")
    yield server
    server.stop()


def test_the_api_gives_the_photos_people_as_predict_writes_them(server, tmp_path, python_env):
    """POST a real photo: the detector's box around the skier (or, without the detector, the
    whole photo), the joints in the skier's box; given boxes win, one person each; the records
    are hourglass-predict's (same keypoints as its JSON for the same box)."""
    status, info = server.get("/api/info")
    info = json.loads(info)
    assert status == 200 and info["skeleton"]["name"] == "lsp"
    assert len(info["skeleton"]["limbs"]) == len(info["skeleton"]["limb_colours"])
    status, page = server.get("/")
    assert status == 200 and b"/static/demo.js" in page
    assert server.get("/static/demo.js")[0] == 200
    data = PHOTO.read_bytes()
    status, body = server.post(data)
    assert status == 200 and (body["width"], body["height"]) == (640, 425)
    if info["detector"]:
        assert body["boxes_from"] == "detector" and len(body["people"]) >= 1
        x, y, w, h = body["people"][0]["bbox"]
        cx, cy = x + w / 2, y + h / 2  # the detector's box is centred on the skier
        assert SKIER[0] < cx < SKIER[0] + SKIER[2] and SKIER[1] < cy < SKIER[1] + SKIER[3]
    else:
        assert body["boxes_from"] == "whole image" and body["people"][0]["bbox"] is None
    boxes = [SKIER, [20.0, 60.0, 200.0, 340.0]]
    status, given = server.post(data, f"?boxes={json.dumps(boxes).replace(' ', '')}")
    assert status == 200 and given["boxes_from"] == "given"
    assert [p["bbox"] for p in given["people"]] == boxes
    joints = given["people"][0]["joints"]
    inside = [
        SKIER[0] - 20 <= j["x"] <= SKIER[0] + SKIER[2] + 20
        and SKIER[1] - 20 <= j["y"] <= SKIER[1] + SKIER[3] + 20
        for j in joints.values()
    ]
    assert sum(inside) >= 12, joints
    # The same person as hourglass-predict finds it with the same box, runtime and model.
    out = tmp_path / "poses"
    result = subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), str(PHOTO), "--bbox", "281,45,219,347"]
        + ["--out", str(out), "-q", "--runtime", info["runtime"].split("/")[0]]
        + ["--precision", info["runtime"].split("/")[1]],
        env=python_env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((out / "coco_000000000785_pose.json").read_text())["people"][0]
    for name, joint in written["joints"].items():
        assert joints[name]["x"] == pytest.approx(joint["x"], abs=0.05)
        assert joints[name]["y"] == pytest.approx(joint["y"], abs=0.05)


def test_the_page_finds_everyone_in_a_group_photo(server, shared_data, tmp_path):
    """Four held-out LSPET photos tiled 2 x 2 (520 x 520): the page's detector runs over tiles
    (its default --detect-scales 1,2,3) and every person found comes back with a box; at least
    three of the four are found, each near its annotation."""
    from conftest import benchmark_module

    _detector_or_skip()
    bench = benchmark_module("group_accuracy")
    people = bench.lspet_people(str(shared_data / "lspet"), 9005, 9008)
    groups = bench.build_groups(people, str(shared_data / "lspet"), 2, 260, str(tmp_path))
    status, body = server.post((tmp_path / groups[0][0]).read_bytes())
    assert status == 200, body
    found = body["people"]
    assert 3 <= len(found) <= 5 and all(len(p["bbox"]) == 4 for p in found)
    from photo_accuracy import LSP_JOINTS

    reported = [
        (np.array([[p["joints"][n]["x"], p["joints"][n]["y"]] for n in LSP_JOINTS]), None)
        for p in found
    ]
    _, recall, _, _ = bench.score_groups(groups, {groups[0][0]: reported})
    assert recall >= 0.5, recall


def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_running(server, tmp_path):
    """Each bad request a clear one-line JSON error with its 4xx status; the server answers
    the next photo; nothing is written in its folder."""
    data = PHOTO.read_bytes()
    import io

    from PIL import Image

    big = io.BytesIO()
    Image.fromarray(np.zeros((700, 700, 3), np.uint8)).save(big, format="PNG")  # 490,000 px
    cases = [
        (b"%PDF-1.4 not an image", "", 415, "not an image"),
        (data[: len(data) // 2], "", 400, "truncated JPEG"),
        (b"", "", 400, "has no image"),
        (os.urandom(1_100_000), "", 413, "over the limit of 1,000,000 bytes"),
        (big.getvalue(), "", 413, "above the limit of 300,000"),
        (data, "?boxes=[[5000,0,10,10]]", 422, "lies outside the image (640x425)"),
        (data, "?boxes=[[1,2,3]]", 400, "[x, y, w, h]"),
        (data, "?boxes=nonsense", 400, "a JSON list"),
        (data, "?threshold=7", 400, "between 0 and 1"),
    ]
    for payload, query, status, message in cases:
        got, body = server.post(payload, query)
        assert (got, list(body)) == (status, ["error"]), (query, got, body)
        assert message in body["error"] and "\n" not in body["error"], body
    assert server.post(data)[0] == 200 and server.process.poll() is None
    assert list(server.folder.iterdir()) == []


@pytest.mark.slow
def test_fifty_requests_at_once_are_all_answered(server):
    """50 photos posted at once: each answered (200, or a 503 saying the server is busy), the
    server still running and answering after."""
    data = PHOTO.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: server.post(data, "?detect=0"), range(50)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1
    for status, body in answers:
        if status == 200:
            assert len(body["people"]) == 1 and body["boxes_from"] == "whole image"
        else:
            assert "busy" in body["error"]
    assert server.post(data)[0] == 200 and server.process.poll() is None


def test_the_person_detector_finds_the_annotated_people(shared_data):
    """MediaPipe's BlazePose detector through OpenVINO, on the real MPII samples (one annotated
    person each): a box whose crop covers that person in at least 4 of the 5 (measured: 5 of 5,
    docs/BENCHMARKS.md), scores in [0.5, 1], highest first."""
    _detector_or_skip()
    from keras_hourglass.poses.detect import PersonDetector
    from keras_hourglass.poses.media import read_image

    detector = PersonDetector()
    people = json.loads((shared_data / "mpii_samples/test_mpii.json").read_text())
    found = 0
    for person in people:
        _, pixels = read_image(str(shared_data / "mpii_samples" / person["image"]))
        boxes = detector(pixels)
        scores = [b.score for b in boxes]
        assert scores == sorted(scores, reverse=True) and all(0.5 <= s <= 1 for s in scores)
        joints = np.array(person["joints"])[np.array(person["joints_vis"]) > 0]
        inside = [
            ((joints >= [b.x, b.y]) & (joints <= [b.x + b.w, b.y + b.h])).all(1).mean()
            for b in boxes
        ]
        found += max(inside, default=0) >= 0.8  # 80% of the joints in one box
    assert found >= 4
    blank = np.zeros((300, 400, 3), np.uint8)
    assert detector(blank) == []


@pytest.mark.slow
def test_predict_detect_finds_the_skier(tmp_path, python_env):
    """hourglass-predict --detect: the skier found and predicted; a blank photo has no one (the
    detector, the turned photo and the whole photo tried: no confident pose); boxes given win
    over --detect."""
    _detector_or_skip()
    from PIL import Image

    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(tmp_path / "blank.png")
    result = subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), str(PHOTO), str(tmp_path / "blank.png")]
        + ["--detect", "--out", str(tmp_path / "o")],
        env=python_env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "blank.png: no person found" in result.stdout + result.stderr
    skier = json.loads((tmp_path / "o/coco_000000000785_pose.json").read_text())["people"]
    x, y, w, h = skier[0]["bbox"]
    assert SKIER[0] < x + w / 2 < SKIER[0] + SKIER[2] and 0 < skier[0]["box_score"] <= 1
    blank = json.loads((tmp_path / "o/blank_pose.json").read_text())
    assert blank["people"] == [] and blank["found_by"] == "whole"
    given = subprocess.run(
        [PYTHON, str(ROOT / "eval/predict.py"), str(PHOTO), "--detect", "--bbox", "0,0,100,100"]
        + ["--out", str(tmp_path / "g")],
        env=python_env,
        capture_output=True,
        text=True,
    )
    assert given.returncode == 0 and "boxes given win over --detect" in given.stderr


# --- the page in a real browser ---------------------------------------------------------------


def _browser_or_skip():
    return chromium_or_skip(1600)


def _wait_for(browser, condition, timeout=120):
    return wait_until(browser, condition, timeout)


def _tables(browser):
    """The page's joint tables: [[(joint, x, y, confidence), ...] per person], rows in order."""
    rows = browser.execute_script(
        """return Array.from(document.querySelectorAll('article.photo table.joints')).map(t =>
             Array.from(t.tBodies[0].rows).map(r =>
               [r.dataset.joint].concat(Array.from(r.cells).slice(1).map(c => c.textContent))))"""
    )
    return [[(j, float(x), float(y), float(c)) for j, x, y, c in table] for table in rows]


@pytest.mark.slow
def test_the_page_in_a_browser_shows_the_skeleton_and_follows_a_new_box(
    server, shared_data, tmp_path
):
    """Headless Chromium: upload a real photo from ../shared, wait for the skeleton, check the
    canvas has the skeleton's colours, the joint table is the API's JSON, then drag a box on an
    empty place and see a second person; a screenshot of the page is taken."""
    browser = _browser_or_skip()
    photo = shared_data / "coco_samples/000000000785.jpg"
    try:
        browser.get(server.url + "/")
        _wait_for(browser, lambda b: "Model lspet" in b.find_element("id", "model").text, 60)
        browser.find_element("id", "files").send_keys(str(photo))
        card = _wait_for(
            browser,
            lambda b: b.find_element("css selector", "article.photo[data-state=done]"),
        )
        # The canvas holds the photo with the skeleton: pixels of the limbs' colours.
        coloured = browser.execute_script(
            """const c = document.querySelector('article.photo canvas');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               let red = 0, green = 0;
               for (let i = 0; i < d.length; i += 4) {
                 if (d[i] === 230 && d[i + 1] === 50 && d[i + 2] === 50) red++;
                 if (d[i] === 40 && d[i + 1] === 200 && d[i + 2] === 60) green++;
               }
               return [c.width, c.height, red, green];"""
        )
        assert coloured[:2] == [640, 425] and coloured[2] > 50 and coloured[3] > 50, coloured
        _, api = server.post(photo.read_bytes())
        tables = _tables(browser)
        assert len(tables) == len(api["people"])
        for table, person in zip(tables, api["people"]):
            assert [row[0] for row in table] == list(person["joints"])
            for name, x, y, confidence in table:
                joint = person["joints"][name]
                assert x == pytest.approx(joint["x"], abs=0.0501)  # shown to 0.1 px
                assert y == pytest.approx(joint["y"], abs=0.0501)
                assert confidence == pytest.approx(joint["confidence"], abs=5.01e-4)
        # Drag a new box over the left of the photo (no one there yet): a second person.
        before = len(tables)
        canvas = card.find_element("css selector", "canvas")
        scale = canvas.size["width"] / 640
        from selenium.webdriver.common.action_chains import ActionChains

        start = (-canvas.size["width"] / 2 + 15 * scale, -canvas.size["height"] / 2 + 60 * scale)
        ActionChains(browser).move_to_element_with_offset(
            canvas, *start
        ).click_and_hold().move_by_offset(200 * scale, 340 * scale).release().perform()
        _wait_for(
            browser,
            lambda b: (
                len(_tables(b)) == before + 1
                and b.find_element("css selector", "article.photo").get_attribute("data-state")
                == "done"
            ),
        )
        assert "from your boxes" in card.find_element("css selector", ".status").text
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.quit()


@pytest.mark.slow
def test_the_page_draws_a_phone_photo_upright_with_the_skeleton_on_the_person(server, tmp_path):
    """A phone's photo (stored sideways, EXIF orientation 6): the page shows it upright (640 x
    425) and the skeleton's limb colours fall on the skier, not beside him."""
    import io

    from PIL import Image

    browser = _browser_or_skip()
    pixels = np.asarray(Image.open(ROOT / "docs/images/coco_000000000785.jpg").convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6  # view = the stored rows turned 90 degrees clockwise
    stored = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(pixels, 1))).save(
        stored, format="JPEG", quality=95, exif=exif.tobytes()
    )
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(stored.getvalue())
    try:
        browser.get(server.url + "/")
        _wait_for(browser, lambda b: "Model lspet" in b.find_element("id", "model").text, 60)
        browser.find_element("id", "files").send_keys(str(photo))
        _wait_for(
            browser, lambda b: b.find_element("css selector", "article.photo[data-state=done]")
        )
        width, height, inside, outside = browser.execute_script(
            """const c = document.querySelector('article.photo canvas');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               let inside = 0, outside = 0;
               for (let i = 0; i < d.length; i += 4) {
                 const limb = (d[i] === 230 && d[i + 1] === 50 && d[i + 2] === 50) ||
                              (d[i] === 40 && d[i + 1] === 200 && d[i + 2] === 60);
                 if (!limb) continue;
                 const x = (i / 4) % c.width, y = Math.floor(i / 4 / c.width);
                 if (x >= 260 && x <= 520 && y >= 25 && y <= 410) inside++; else outside++;
               }
               return [c.width, c.height, inside, outside];"""
        )
        assert (width, height) == (640, 425)  # shown upright
        assert inside > 50 and inside > 10 * outside, (inside, outside)  # on the skier
    finally:
        browser.quit()


@pytest.mark.slow
def test_the_page_says_what_is_wrong_with_a_bad_file(server, tmp_path):
    """A file that is not an image: the page shows the server's message in the photo's card."""
    browser = _browser_or_skip()
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"these are notes, not a photo")
    try:
        browser.get(server.url + "/")
        browser.find_element("id", "files").send_keys(str(bad))
        card = _wait_for(
            browser, lambda b: b.find_element("css selector", "article.photo[data-state=error]")
        )
        text = card.find_element("css selector", ".status").text
        assert "not an image" in text and "HTTP 415" in text
    finally:
        browser.quit()


def test_demo_help_and_a_busy_port_answer_in_one_line(python_env):
    import socket

    result = subprocess.run(
        [PYTHON, str(ROOT / "eval/demo.py"), "--help"],
        env=python_env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "--port" in result.stdout and "--no-detect" in result.stdout
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [PYTHON, str(ROOT / "eval/demo.py"), "--port", str(port)],
            env=python_env,
            capture_output=True,
            text=True,
        )
    assert result.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_page_loads_nothing_from_the_internet():
    """Every script, style and image the page names is served from the package."""
    page = ROOT / "keras_hourglass/poses/demo_page"
    for path in page.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path
    assert pathlib.Path(page / "index.html").read_text().count("/static/") == 2
