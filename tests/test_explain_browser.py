"""The HTML worked example really renders: opened in headless Chromium, offline, no JavaScript of its own.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so no Python package beyond the standard library is
needed.  The test checks that the page loads with no console error and no network request,
that every ``<math>`` element is a laid-out MathML element (fractions stacked, subscripts
lowered), that the SVG diagram has its nodes, and that a screenshot is not blank.

Skipped, saying why, when no Chromium binary is found (Debian: ``apt-get install chromium``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from symgrad.explain import explain

MAZUR = Path(__file__).resolve().parent.parent / "examples" / "mazur.json"
SOFTMAX = {
    "name": "pets", "inputs": ["x1", "x2", "x3"],
    "layers": [{"units": 3, "activation": "tanh"}, {"units": ["cat", "dog", "eel"], "activation": "softmax"}],
    "loss": "cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "initial": {"scheme": "xavier_uniform", "seed": 2},
    "example": {"inputs": [0.5, -1.0, 2.0], "targets": [0, 1, 0]},
}
ADAM = {  # Adam's first step (fractions, square roots, hats) and the penalties' lines
    "name": "adam_l2", "inputs": ["i1", "i2"],
    "layers": [{"units": ["h1", "h2"], "activation": "sigmoid", "l2": 0.01, "l1": 0.001},
               {"units": ["o1", "o2"], "activation": "sigmoid", "l2": 0.01, "regularize_bias": True}],
    "loss": "half_sse", "optimizer": {"name": "adam", "learning_rate": 0.01, "weight_decay": 0.001},
    "initial": {"scheme": "xavier_uniform", "seed": 4},
    "example": {"inputs": [0.05, 0.10], "targets": [0.01, 0.99]},
}
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--window-size=1000,1300",
         "--remote-debugging-pipe")
TIMEOUT = 20.0

CHROMIUM = next((path for path in map(shutil.which, BINARIES) if path), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary on PATH (looked for: " + ", ".join(BINARIES)
    + "); install Debian's chromium package (apt-get install chromium) to run the browser test")

#: Measured in the page by the test (the page itself has no script).
MEASURE = """JSON.stringify((() => {
  const maths = [...document.querySelectorAll('math')];
  const box = e => e.getBoundingClientRect();
  const fracs = [...document.querySelectorAll('mfrac')].map(f => {
    const [num, den] = [box(f.children[0]), box(f.children[1])];
    return num.bottom <= den.top + 1 && num.height > 0 && den.height > 0;
  });
  const size = e => parseFloat(getComputedStyle(e).fontSize);
  const subs = [...document.querySelectorAll('msub')].map(s => {
    const [base, sub] = [box(s.children[0]), box(s.children[1])];
    return sub.bottom > base.bottom && size(s.children[1]) < size(s.children[0]);
  });
  const svg = document.querySelector('svg');
  const r = box(svg);
  // a matrix column's entries end at one right edge (numbers line up), however wide each is
  const matrices = [...document.querySelectorAll('mtable.matrix')];
  const ragged = matrices.filter(t => {
    const rows = [...t.children];
    return [...rows[0].children].some((_, c) => {
      const rights = rows.map(row => box(row.children[c].firstElementChild).right);
      return Math.max(...rights) - Math.min(...rights) > 1;
    });
  });
  const widths = matrices.map(t => new Set([...t.querySelectorAll('mtd')].map(d =>
    Math.round(box(d.firstElementChild).width))).size);
  return {
    matrices: matrices.length, ragged: ragged.length, uneven: widths.filter(n => n > 1).length,
    maths: maths.length,
    mathml: maths.filter(m => m instanceof MathMLElement).length,
    sized: maths.filter(m => box(m).width > 10 && box(m).height > 8).length,
    fracs: fracs.length, stacked: fracs.filter(Boolean).length,
    subs: subs.length, lowered: subs.filter(Boolean).length,
    circles: svg.querySelectorAll('circle').length,
    svg: [r.left, r.top, r.width, r.height],
    height: document.documentElement.scrollHeight,
    scripts: document.scripts.length,
  };
})())"""


def _above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class DevTools:
    """A Chromium process and its DevTools protocol over a pipe."""

    def __init__(self, binary: str, profile: str) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The protocol reads commands from fd 3 and writes to fd 4.  Move the pipe ends above 9
        # first so that neither dup2 overwrites the other's source; dup2 makes the copies
        # inheritable, and every other descriptor of this process is not (PEP 446).
        to_browser_read, from_browser_write = (_above_9(fd) for fd in (to_browser_read, from_browser_write))

        def connect() -> None:
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"], preexec_fn=connect, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict:
        def wanted(event: dict) -> bool:
            return event.get("method") == method and event.get("sessionId") == session

        for event in self.events:
            if wanted(event):
                return event
        while True:
            event = self._receive()
            self.events.append(event)
            if wanted(event):
                return event

    def _receive(self) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"Chromium sent nothing for {TIMEOUT} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe: "
                                     + self.process.stderr.read().decode(errors="replace")[-2000:])
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            os.write(self._to_browser, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.process.stderr.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module, with a fresh empty profile."""
    with tempfile.TemporaryDirectory(prefix="symgrad-chromium-") as profile:
        devtools = DevTools(CHROMIUM, profile)
        try:
            yield devtools
        finally:
            devtools.close()


#: For pages without a diagram (the exercise sheets): tables and text laid out, nothing missing.
MEASURE_SHEET = """JSON.stringify((() => {
  const box = e => e.getBoundingClientRect();
  const cells = [...document.querySelectorAll('td, th')];
  return {
    tables: document.querySelectorAll('table').length,
    cells: cells.length, sized: cells.filter(c => box(c).width > 0 && box(c).height > 0).length,
    text: document.body.innerText.length,
    height: document.documentElement.scrollHeight,
    scripts: document.scripts.length,
    maths: document.querySelectorAll('math').length,
    mathml: [...document.querySelectorAll('math')].filter(m => m instanceof MathMLElement).length,
  };
})())"""


def render_page(browser: DevTools, path: Path, measure: str = MEASURE) -> tuple[dict, bytes, list[dict]]:
    """Open ``path`` in a new tab: the page's measurements, a screenshot (PNG) and the tab's events."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.send(f"{domain}.enable", session)
    browser.send("Page.navigate", session, url=path.as_uri())
    browser.wait_for("Page.loadEventFired", session)
    measured = browser.send("Runtime.evaluate", session, expression=measure, returnByValue=True)
    shot = browser.send("Page.captureScreenshot", session, format="png",
                        clip={"x": 0, "y": 0, "width": 1000, "height": 1300, "scale": 0.25})
    browser.send("Target.closeTarget", targetId=target)
    events = [event for event in browser.events if event.get("sessionId") == session]
    return json.loads(measured["result"]["value"]), base64.b64decode(shot["data"]), events


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, raw pixels) of an 8-bit, non-interlaced RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    pixels = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                row[x] = (row[x] + a) & 255
            elif kind == 2:
                row[x] = (row[x] + b) & 255
            elif kind == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += row
        previous = row
    return width, height, bpp, bytes(pixels)


def _problems(events: list[dict], page: Path) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            found.append(f"console {params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            found.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent" and params.get("request", {}).get("url") != page.as_uri():
            found.append(f"request: {params['request'].get('url')}")
    return found


SEVERAL = {  # three examples: each forward pass shown, tables of nothing; the matrix form of three layers
    "name": "several", "inputs": ["x1", "x2"],
    "layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "relu"},
               {"units": ["y"], "activation": "sigmoid", "bias": "shared"}],
    "loss": "binary_cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "initial": {"scheme": "xavier_uniform", "seed": 5},
    "example": {"inputs": [[0.5, -1.0], [1.5, 0.25], [-0.5, 0.75]], "targets": [[1.0], [0.0], [1.0]]},
}


def _assert_not_blank(png: bytes) -> None:
    width_px, height_px, bpp, pixels = decode_png(png)
    colors = {pixels[i:i + 3] for i in range(0, len(pixels), bpp)}
    inked = sum(1 for i in range(0, len(pixels), bpp) if sum(pixels[i:i + 3]) < 600)
    assert len(colors) > 20 and inked > 0.01 * width_px * height_px, "the screenshot is blank"


@pytest.mark.parametrize("spec", [MAZUR, SOFTMAX, ADAM, SEVERAL], ids=["mazur", "softmax", "adam", "several"])
def test_explain_html_renders_in_chromium(browser, tmp_path, spec):
    page = tmp_path / "explain.html"
    html = explain(spec, "html", steps=100)
    page.write_text(html, encoding="utf-8")
    measured, png, events = render_page(browser, page)

    assert _problems(events, page) == []
    assert measured["scripts"] == 0
    maths = html.count("<math ")
    assert measured["maths"] == maths > 20
    assert measured["mathml"] == maths, "math elements not parsed as MathML"
    assert measured["sized"] == maths, "a formula has no size"
    assert measured["fracs"] > 20 and measured["stacked"] == measured["fracs"], "fractions not laid out"
    assert measured["subs"] > 20 and measured["lowered"] == measured["subs"], "subscripts not laid out"
    assert measured["circles"] >= 8
    assert measured["matrices"] > 4 and measured["uneven"] > 0, "no matrix whose entries differ in width"
    assert measured["ragged"] == 0, "a matrix column is not right-aligned"
    left, top, width, height = measured["svg"]
    assert width > 300 and height > 150 and measured["height"] > 2000

    width_px, height_px, bpp, pixels = decode_png(png)
    assert (width_px, height_px) == (250, 325)
    colors = {pixels[i:i + 3] for i in range(0, len(pixels), bpp)}
    inked = sum(1 for i in range(0, len(pixels), bpp) if sum(pixels[i:i + 3]) < 600)
    assert len(colors) > 50 and inked > 0.02 * width_px * height_px, "the screenshot is blank"
    # The diagram's region holds colour: the drawn circles and lines, not just the background.
    region = {pixels[(y * width_px + x) * bpp:(y * width_px + x) * bpp + 3]
              for y in range(int(top / 4), min(int((top + height) / 4), height_px))
              for x in range(int(left / 4), min(int((left + width) / 4), width_px))}
    assert len(region) > 20


def test_exercise_sheets_render_in_chromium(browser, tmp_path):
    """The exercise command's HTML question sheet, answer key and worked solutions load and lay out."""
    from symgrad.exercise import write_exercises

    written = write_exercises(7, tmp_path / "sheet", count=2, format="html")
    pages = {path.name: path for path in written if path.suffix == ".html"}
    assert {"questions.html", "answers.html", "worked-1.html", "worked-2.html"} <= set(pages)
    for name, page in sorted(pages.items()):
        worked = name.startswith("worked-")
        measured, png, events = render_page(browser, page, MEASURE if worked else MEASURE_SHEET)
        assert _problems(events, page) == [], name
        assert measured["scripts"] == 0, name
        if worked:  # explain's page: every formula laid out, the diagram drawn
            assert measured["mathml"] == measured["maths"] > 20 and measured["sized"] == measured["maths"], name
            assert measured["stacked"] == measured["fracs"] > 0 and measured["lowered"] == measured["subs"], name
            assert measured["circles"] >= 6, name
        else:  # the sheets: their tables laid out, every cell with a size
            assert measured["tables"] >= 2 and measured["cells"] > 10 and measured["sized"] == measured["cells"], name
            assert measured["mathml"] == measured["maths"], name
            assert measured["text"] > 300 and measured["height"] > 500, name
        _assert_not_blank(png)
