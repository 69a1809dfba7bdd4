"""The demo page's speed and memory (issue #41): the time from a photo's upload to its drawn
skeleton in the browser (headless Chromium: fetch, server, JSON, canvas and tables) for one and
for four people, with the shipped model on the default runtime; and the server's resident
memory over 200 requests.

    python benchmarks/demo_page.py [--data ../shared/data] [--repeat 5] [--requests 200]
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    import tempfile

    from test_demo import Server, _browser_or_skip  # the tests' server and browser

    data = pathlib.Path(args.data) / "coco_samples"
    coco = json.loads((data / "test_coco.json").read_text())
    four = next(im for im in coco["images"] if im["file_name"] == "000000197388.jpg")
    boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == four["id"]][:4]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_HOURGLASS_RUNTIME")}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as folder:
        server = Server(pathlib.Path(folder), env)
        try:
            _, info = server.get("/api/info")
            info = json.loads(info)
            print(f"demo_page: {os.cpu_count()} CPUs, {info['model']} on {info['runtime']}")
            browser = _browser_or_skip()
            try:
                browser.get(server.url + "/")
                one = _times(browser, data / "000000000785.jpg", None, args.repeat)
                many = _times(browser, data / four["file_name"], boxes, args.repeat)
            finally:
                browser.quit()
            print(f"upload to drawn skeleton, 1 person (detector's box): median {one} ms")
            print(f"upload to drawn skeleton, 4 people (given boxes): median {many} ms")
            photo = (data / "000000000785.jpg").read_bytes()
            rss = {0: server.rss_mib()}
            for n in range(1, args.requests + 1):
                request = urllib.request.Request(
                    server.url + "/api/poses", data=photo, headers={"Content-Type": "image/jpeg"}
                )
                urllib.request.urlopen(request, timeout=60).read()
                if n in (20, 100, args.requests):
                    rss[n] = server.rss_mib()
            print(
                "server memory (RSS, MiB) after "
                + ", ".join(f"{n} requests: {v:.0f}" for n, v in rss.items())
            )
        finally:
            server.stop()


def _times(browser, photo, boxes, repeat):
    """Median ms from the upload to the drawn skeleton (the page's own measure) over `repeat`
    uploads; with `boxes`, each upload's people are asked for again with those boxes."""
    times = []
    for _ in range(repeat):
        count = browser.execute_script("return window.hourglassDemo.photos.length")
        browser.find_element("id", "files").send_keys(str(photo))
        _wait(browser, count)
        if boxes is not None:
            browser.execute_script(
                "const p = window.hourglassDemo.photos[arguments[0]]; p.boxes = arguments[1];"
                "p.card.dataset.state = 'waiting'; p.predict();",
                count,
                boxes,
            )
            _wait(browser, count)
            people = browser.execute_script(
                "return window.hourglassDemo.photos[arguments[0]].result.people.length", count
            )
            assert people == len(boxes), people
        times.append(
            float(
                browser.execute_script(
                    "return window.hourglassDemo.photos[arguments[0]].card.dataset.elapsedMs",
                    count,
                )
            )
        )
    return round(statistics.median(times))


def _wait(browser, index, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = browser.execute_script(
            "const p = window.hourglassDemo.photos[arguments[0]];"
            "return p ? p.card.dataset.state : null",
            index,
        )
        if state == "done":
            return
        if state == "error":
            raise RuntimeError("the page shows an error")
        time.sleep(0.02)
    raise TimeoutError("no skeleton drawn")


if __name__ == "__main__":
    main()
