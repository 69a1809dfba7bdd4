"""The README's picture of the demo page: `hourglass-demo` with the shipped model on the default
runtime, the README's photo uploaded in headless Chromium, the page saved as
docs/images/demo_page.png (the browser's window, 1280 px wide).

    python tools/demo_screenshot.py [--out docs/images/demo_page.png]
"""

import argparse
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs/images/demo_page.png"))
    args = parser.parse_args(argv)
    from test_demo import PHOTO, Server, _browser_or_skip, _wait_for

    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOURGLASS_RUNTIME"}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as folder:
        server = Server(pathlib.Path(folder), env)
        browser = _browser_or_skip()
        try:
            browser.set_window_size(1280, 1150)
            browser.get(server.url + "/")
            _wait_for(browser, lambda b: "Model " in b.find_element("id", "model").text, 60)
            browser.find_element("id", "files").send_keys(str(PHOTO))
            _wait_for(browser, lambda b: b.find_element("css selector", "[data-state=done]"))
            browser.save_screenshot(args.out)
        finally:
            browser.quit()
            server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
