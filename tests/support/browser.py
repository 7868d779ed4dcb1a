"""A headless Chromium driven over the Chrome DevTools Protocol (CDP) on a pipe.

``--remote-debugging-pipe`` makes Chromium read commands on its fd 3 and write
answers and events on its fd 4, each message one JSON object ended by a NUL
byte (CDP's pipe transport) — no WebSocket and no library needed. One page,
a temporary profile, bounded waits, and the browser's whole process group
killed on the way out, whatever happened:

    with Browser.launch(tmp_path) as page:
        page.block_network()
        page.navigate(path.as_uri())
        assert not page.problems()

What a page did is kept as it happens: console calls (``Runtime.consoleAPICalled``),
uncaught exceptions (``Runtime.exceptionThrown``), the browser's own log
(``Log.entryAdded``: CSP violations, failed loads), requests
(``Network.requestWillBeSent``) and failed loads (``Network.loadingFailed``).
Domains: https://chromedevtools.github.io/devtools-protocol/
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

TIMEOUT = 20.0  # seconds an answer or an awaited event may take
WINDOW = (1280, 900)  # CSS pixels of the viewport
FLAGS = (
    "--headless",
    "--remote-debugging-pipe",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(Exception):
    """Chromium answered a command with an error, died, or did not answer in time."""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian: chromium), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _above(fd: int, lowest: int) -> int:
    """A duplicate of ``fd`` numbered ``lowest`` or more; ``fd`` is closed."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


class Browser:
    """One running Chromium and the CDP connection to it (use ``Browser.launch``)."""

    def __init__(self, process: subprocess.Popen, commands: int, answers: int) -> None:
        self.process = process
        self._commands = commands  # our end of Chromium's fd 3
        self._ids = itertools.count(1)
        self._answers: dict[int, dict] = {}
        self.events: list[dict] = []  # every event, in arrival order
        self._changed = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, args=(answers,), daemon=True)
        self._reader.start()

    @classmethod
    @contextlib.contextmanager
    def launch(cls, folder: Path, executable: str | None = None) -> Iterator[Page]:
        """Start Chromium with a profile in ``folder``/profile, open a blank page, yield it;
        kill the browser's process group on the way out."""
        executable = executable or find_chromium()
        if executable is None:
            raise BrowserError("chromium is not installed")
        flags = [
            *FLAGS,
            f"--user-data-dir={folder / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
        ]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
        to_browser, commands = os.pipe()
        answers, from_browser = os.pipe()
        # Chromium expects the pipe on fds 3 (its input) and 4 (its output): bash puts it
        # there, from fds of 10 and up so that neither is already 3 or 4.
        to_browser, from_browser = (_above(fd, 10) for fd in (to_browser, from_browser))
        shell = f'exec "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        process = subprocess.Popen(
            ["/bin/bash", "-c", shell, "bash", executable, *flags, "about:blank"],
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed as one
        )
        os.close(to_browser)
        os.close(from_browser)
        browser = cls(process, commands, answers)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})
            page = Page(browser, session["sessionId"])
            page.enable()
            yield page
        finally:
            browser.close()

    def _read(self, answers: int) -> None:
        """Collect Chromium's messages until it closes its end."""
        buffer = b""
        with os.fdopen(answers, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                with self._changed:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._answers[message["id"]] = message
                        else:
                            self.events.append(message)
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command (to ``session``'s page, or to the browser) and return its
        result; BrowserError on an error answer or none within TIMEOUT seconds."""
        number = next(self._ids)
        message: dict = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        with self._changed:
            if not self._changed.wait_for(lambda: number in self._answers or self._closed, TIMEOUT):
                raise BrowserError(f"{method}: no answer within {TIMEOUT:g} s")
            if number not in self._answers:
                raise BrowserError(f"{method}: chromium exited")
            answer = self._answers.pop(number)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer["result"]

    def wait_for(self, method: str, session: str, after: int = 0) -> dict:
        """The first event ``method`` of ``session`` from ``self.events[after:]`` on,
        waiting up to TIMEOUT seconds for it."""

        def found() -> dict | None:
            return next(
                (
                    e
                    for e in self.events[after:]
                    if e["method"] == method and e.get("sessionId") == session
                ),
                None,
            )

        with self._changed:
            if not self._changed.wait_for(lambda: found() or self._closed, TIMEOUT):
                raise BrowserError(f"no {method} within {TIMEOUT:g} s")
            event = found()
        if event is None:
            raise BrowserError(f"chromium exited before {method}")
        return event

    def close(self) -> None:
        """Kill the browser and everything it started, and release the pipe."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT)
        os.close(self._commands)
        self._reader.join(timeout=TIMEOUT)


class Page:
    """A tab of ``Browser``: navigate, evaluate, screenshot, and what happened in it."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        """A command to this page (see Browser.send)."""
        return self.browser.send(method, params, self.session)

    def enable(self) -> None:
        """Report page, console, log and network events; a viewport of WINDOW."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        width, height = WINDOW
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def block_network(self) -> None:
        """Fail every request the page makes over the network (http, https, ws, wss,
        ftp), as if offline; a file:// page and data: URIs still load."""
        self.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        patterns = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
        self.send("Network.setBlockedURLs", {"urls": patterns})

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait for its load event (every subresource done or failed)."""
        mark = len(self.browser.events)
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self.browser.wait_for("Page.loadEventFired", self.session, mark)

    def evaluate(self, expression: str):
        """The value of the JavaScript ``expression`` (JSON-serialisable; a promise is
        awaited); BrowserError if it throws."""
        answer = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description", details["text"]))
        return answer["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real left click (press and release) at (``x``, ``y``) CSS pixels of the
        viewport, through the input pipeline like a user's."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self, clip: dict | None = None) -> bytes:
        """A PNG of the viewport, or of ``clip`` ({"x", "y", "width", "height"} in CSS
        pixels of the document, beyond the viewport if need be)."""
        params: dict = {"format": "png"}
        if clip is not None:
            params |= {"clip": {**clip, "scale": 1}, "captureBeyondViewport": True}
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def _events(self, *methods: str) -> list[dict]:
        return [
            e
            for e in list(self.browser.events)
            if e["method"] in methods and e.get("sessionId") == self.session
        ]

    def requests(self) -> list[str]:
        """The URL of every request the page made, in order."""
        return [e["params"]["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    def problems(self) -> list[str]:
        """One line per failed load, console error or warning, uncaught exception and
        browser log entry of level warning or error, in order; empty: a clean page."""
        found = []
        urls = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self._events("Network.requestWillBeSent")
        }
        for event in self._events(
            "Network.loadingFailed",
            "Runtime.consoleAPICalled",
            "Runtime.exceptionThrown",
            "Log.entryAdded",
        ):
            method, params = event["method"], event["params"]
            if method == "Network.loadingFailed":
                why = params.get("blockedReason") or params.get("errorText")
                found.append(f"failed load: {urls.get(params['requestId'], '?')} ({why})")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
                text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                found.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(
                    "exception: "
                    + details.get("exception", {}).get("description", details.get("text", ""))
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("warning", "error"):
                entry = params["entry"]
                found.append(f"log {entry['level']}: {entry['text']} {entry.get('url', '')}")
        return found
