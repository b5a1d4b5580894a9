"""Drive real REPLs in a pseudo-terminal, answering the queries a real terminal would.

bpython (through curtsies/blessed) and prompt_toolkit (IPython, ptpython) ask the terminal
for the cursor position (``ESC [ 6n``) and wait for the answer; a bare pty never answers, so
they stall for seconds or print warnings. :class:`Session` answers each query as a terminal
would, and matches patterns against the output with escape codes stripped, since prompts
such as IPython's ``In [1]:`` are coloured in the middle.
"""

from __future__ import annotations

import re
import time
from typing import Any

CPR_REQUEST = "\x1b[6n"
ANSI = re.compile(
    r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[=>()][0-9A-Za-z]?)"
)

PROMPTS = {
    "bpython": r">>> ",
    "ipython": r"In \[\d+\]: ",
    "ptpython": r">>>",
    "python": r">>> ",
}


def strip(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class Session:
    """A pexpect child plus a cursor into its escape-stripped output."""

    def __init__(self, child: Any) -> None:
        self.child = child
        self.raw = ""
        self.consumed = 0  # index into strip(self.raw) up to which expect() has matched
        self.answered = 0

    def _read(self, wait: float) -> bool:
        import pexpect

        try:
            chunk = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += chunk
        queries = self.raw.count(CPR_REQUEST)
        while self.answered < queries:
            self.child.send("\x1b[1;1R")
            self.answered += 1
        return True

    def expect(self, pattern: str, timeout: float = 30) -> str:
        """Wait for ``pattern``; return the text from the last match to the end of this one."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        alive = True
        while True:
            text = strip(self.raw)
            match = wanted.search(text, self.consumed)
            if match:
                before = text[self.consumed : match.end()]
                self.consumed = match.end()
                return before
            if not alive:
                raise EOFError(f"{pattern!r} not seen before exit; output:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not seen in {timeout}s; output:\n{text[-3000:]}")
            alive = self._read(0.05)

    def sendline(self, line: str) -> None:
        self.child.sendline(line)

    def send(self, text: str) -> None:
        self.child.send(text)

    def output(self) -> str:
        return strip(self.raw)

    def wait_exit(self, timeout: float = 20) -> int | None:
        """Read until the program exits; its exit status (None if killed by a signal)."""
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"still running after {timeout}s; output:\n{self.output()[-3000:]}"
                )
        self.child.close()
        return self.child.exitstatus
