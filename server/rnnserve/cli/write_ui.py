"""``rnnserve write MODEL``: type in the terminal and see suggestions live; Tab accepts the first.

A minimal raw-mode terminal loop over an ``Assistant.Session``: every keystroke is one
session event, so each costs work proportional to the keystroke, not to the document.
Keys: printable characters type, Backspace deletes, Tab accepts the first suggestion,
Enter types a newline, Ctrl-D or Ctrl-C ends (the document is printed on exit).
"""

from __future__ import annotations

import os
import sys
import termios
import tty
from typing import TextIO

from rnnserve_client import Client
from rnnserve_client.results import Suggestion

ERASE_LINE = "\r\x1b[2K"


def _render(out: TextIO, document: str, suggestions: list[Suggestion], width: int) -> None:
    line = document.rsplit("\n", 1)[-1][-(width - 1):]
    shown = "  ".join(f"[{i + 1}] {s.text} {s.probability:.0%}" for i, s in enumerate(suggestions))
    out.write(f"{ERASE_LINE}{line}\n{ERASE_LINE}\x1b[2m{shown[: width - 1]}\x1b[0m\x1b[1A\r")
    if line:
        out.write(f"\x1b[{len(line)}C")
    out.flush()


def run(client: Client, model: str, kinds: tuple[str, ...], max_suggestions: int,
        keys: TextIO = sys.stdin, out: TextIO = sys.stdout) -> str:
    """Run the loop until Ctrl-D/Ctrl-C; returns the document."""
    width = os.get_terminal_size(out.fileno()).columns if out.isatty() else 100
    fd = keys.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved is not None:
        tty.setcbreak(fd)
    try:
        with client.session(model, kinds=kinds, max_suggestions=max_suggestions) as session:
            document, suggestions = "", session.suggestions
            _render(out, document, suggestions, width)
            while True:
                key = os.read(fd, 1).decode(errors="ignore")
                if key in ("", "\x04", "\x03"):
                    break
                if key == "\t" and suggestions:
                    insert = suggestions[0].insert_text
                    document += insert
                    suggestions = session.append(insert)
                elif key in ("\x7f", "\b"):
                    document = document[:-1]
                    suggestions = session.delete(1)
                elif key == "\r" or key == "\n":
                    document += "\n"
                    out.write("\n")
                    suggestions = session.append("\n")
                elif key.isprintable():
                    document += key
                    suggestions = session.append(key)
                _render(out, document, suggestions, width)
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        out.write(f"\n{ERASE_LINE}\n")
        out.flush()
    return document
