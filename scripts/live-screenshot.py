#!/usr/bin/python3
"""Takes docs/live.png: `turnstiled demo --live` on a free port, the page in headless Chromium
(the browser driver of tests/integration/test_live_page.py), a screenshot once windows have
closed, then Ctrl-C to the demo.

    /usr/bin/python3 scripts/live-screenshot.py [--bin build/release/turnstiled] [--out docs/live.png]
"""
import argparse
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("TURNSTILED_BIN", str(ROOT / "build" / "release" / "turnstiled"))
from conftest import free_port, wait_for  # noqa: E402
from test_live_page import Browser  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ["TURNSTILED_BIN"])
    ap.add_argument("--out", default=str(ROOT / "docs" / "live.png"))
    ap.add_argument("--seconds", type=float, default=25, help="how long to let the demo stream")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        demo = subprocess.Popen([args.bin, "demo", "--live", "--out", str(tmp / "demo"),
                                 "--metrics", f"127.0.0.1:{port}"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        browser = None
        try:
            for line in demo.stdout:
                if "live view:" in line:
                    break
            browser = Browser(tmp)
            browser.open(f"http://127.0.0.1:{port}/live")
            time.sleep(args.seconds)
            wait_for(lambda: browser.eval("document.querySelectorAll('#top .bar').length") >= 10,
                     60, "the chart")
            pathlib.Path(args.out).write_bytes(browser.screenshot())
            print(f"wrote {args.out}")
        finally:
            if browser is not None:
                browser.close()
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)


if __name__ == "__main__":
    main()
