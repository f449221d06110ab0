"""Reports opened in a real headless browser (Debian's chromium), driven over the DevTools
protocol with a small stdlib WebSocket client: the page loads without console errors,
every image decodes to a non-zero size, and a full-page screenshot is kept in
test-artifacts/ for a human to look at."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_report import built, study  # noqa: F401  (fixtures: the study report, built once)

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: masked text frames out, frames in."""

    def __init__(self, url: str, timeout: float = 30.0):
        assert url.startswith("ws://")
        host_port, path = url[5:].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("handshake closed")
            head += chunk
        assert b" 101 " in head.split(b"\r\n", 1)[0], head

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("socket closed")
            buf += chunk
        return buf

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed")
            if opcode in (0x9, 0xA):  # ping/pong: not used by DevTools
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One DevTools page session: commands by id, events collected on the way."""

    def __init__(self, ws: WebSocket):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, limit: int = 10000) -> dict:
        for e in self.events:
            if e.get("method") == method:
                return e
        for _ in range(limit):
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {p.get('args')}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    try:
        for _ in range(300):  # chromium writes its port once it listens
            if port_file.is_file() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                pytest.fail(f"chromium exited with {proc.returncode}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        page_target = next(t for t in targets if t.get("type") == "page")
        ws = WebSocket(page_target["webSocketDebuggerUrl"])
        page = Page(ws)
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        yield page
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_and_check(page: Page, html: Path, screenshot: Path) -> list[tuple[bool, int, int]]:
    """Load ``html``, assert a clean load, save a full-page screenshot; return each image's state."""
    page.events.clear()
    page.call("Emulation.clearDeviceMetricsOverride")
    page.call("Page.navigate", url=html.resolve().as_uri())
    page.wait_event("Page.loadEventFired")
    imgs = page.call("Runtime.evaluate", returnByValue=True, expression=(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"))["result"]["value"]
    height = page.call("Runtime.evaluate", returnByValue=True,
                       expression="document.body.scrollHeight + 24")["result"]["value"]
    page.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(int(height), 16000),
              deviceScaleFactor=1, mobile=False)
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert page.errors() == []
    return imgs


def evaluate(page: Page, expression: str):
    return page.call("Runtime.evaluate", returnByValue=True, expression=expression)["result"]["value"]


def check_chosen_and_widths(page: Page) -> str:
    """On the loaded page (at 1280 px): every figure that draws designs names the chosen one in
    its plot data and flags it among the points drawn; no table needs horizontal scrolling.
    Returns the chosen design's label."""
    figures = evaluate(page, "Array.from(document.querySelectorAll('figure')).map(f => "
                             "[f.querySelector('img').alt, f.dataset.plot || null])")
    assert figures
    chosen = set()
    for alt, data in figures:
        if alt.startswith("parameter importance"):  # parameters against objectives: no design drawn
            continue
        assert data is not None, f"figure without plot data: {alt}"
        plot = json.loads(data)
        assert plot["chosen"], alt
        marked = [p for p in plot["points"] if p["chosen"]]
        assert [p["design"] for p in marked] == [plot["chosen"]], alt
        chosen.add(plot["chosen"].replace(" (chosen)", ""))
    assert len(chosen) == 1, chosen  # the same design everywhere
    widths = evaluate(page, "Array.from(document.querySelectorAll('.scroll')).map(d => [d.scrollWidth, d.clientWidth])")
    assert widths and all(sw <= cw for sw, cw in widths), widths
    return chosen.pop()


def test_study_report_loads_cleanly_in_chromium(browser, built):  # noqa: F811
    html, _ = built
    imgs = open_and_check(browser, html, ARTIFACTS / "report-multiobjective.png")
    assert len(imgs) == 8
    assert all(done and w > 0 and h > 0 for done, w, h in imgs), imgs
    title = browser.call("Runtime.evaluate", returnByValue=True, expression="document.title")["result"]["value"]
    assert title == "Study tiny"
    # the <script> in the YAML names is text on the page, not an element
    n_scripts = browser.call("Runtime.evaluate", returnByValue=True,
                             expression="document.scripts.length")["result"]["value"]
    assert n_scripts == 0
    body = browser.call("Runtime.evaluate", returnByValue=True,
                        expression="document.body.innerText")["result"]["value"]
    assert 'toy<script>alert("arch")</script>' in body
    chosen = check_chosen_and_widths(browser)
    # the chosen design heads the top-designs table (rank 0, best first objective)
    t = pd.read_parquet(built[0].parent / "trials.parquet")
    agg = t[(t["workload"] == "__all__") & (t["state"] == "COMPLETE")]
    best = agg.sort_values(["pareto_rank", "tops_per_w"], ascending=[True, False])["trial"].iloc[0]
    assert chosen == f"trial {best}"
    assert "Pareto front" in body


def test_single_objective_report_in_chromium(browser, tmp_path):
    out = tmp_path / "qs"
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "quickstart", "--n-trials", "8", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from dse.report.build import build_report

    html = build_report(out)
    imgs = open_and_check(browser, html, ARTIFACTS / "report-single-objective.png")
    assert all(done and w > 0 and h > 0 for done, w, h in imgs), imgs
    chosen = check_chosen_and_widths(browser)
    t = pd.read_parquet(out / "trials.parquet")
    agg = t[(t["workload"] == "__all__") & t["feasible"]]
    assert chosen == f"trial {agg.loc[agg['tops_per_w'].idxmax(), 'trial']}"
    body = evaluate(browser, "document.body.innerText")
    assert "pareto" not in body.lower()  # one objective: no Pareto language


def test_compare_report_loads_cleanly_in_chromium(browser, tmp_path):
    from dse.search.compare import compare

    df = compare("tpu-v1-like", ["ddr4", "ddr5", "hbm3", "reram-imc"], ["mlp", "gemm"], tmp_path / "cmp")
    imgs = open_and_check(browser, tmp_path / "cmp" / "report.html", ARTIFACTS / "report-compare.png")
    assert len(imgs) == 2
    assert all(done and w > 0 and h > 0 for done, w, h in imgs), imgs
    chosen = check_chosen_and_widths(browser)
    # the chosen technology: the best geometric mean of TOPS/W over the workloads, by hand
    gm = df.groupby("technology")["tops_per_w"].apply(lambda v: float(np.exp(np.log(v).mean())))
    assert chosen == gm.idxmax()
    body = evaluate(browser, "document.body.innerText")
    assert "weight layers moved to the crossbars" in body


def test_the_check_sees_console_errors_and_broken_images(browser, tmp_path):
    """The checks above are not vacuous: a page with an error and a missing image fails them."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>bad</title><img src="missing.png"><script>console.error("boom")</script>')
    with pytest.raises(AssertionError):
        open_and_check(browser, bad, tmp_path / "bad.png")
    assert any("boom" in e for e in browser.errors())
    imgs = browser.call("Runtime.evaluate", returnByValue=True,
                        expression="Array.from(document.images).map(i => i.naturalWidth)")["result"]["value"]
    assert imgs == [0]
