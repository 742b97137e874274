"""Every CLI and curl example in README.md and docs/*.md runs as written (issue 14, point 5).

Examples are read from the fenced shell blocks. A runnable one runs, in document order, against
a served instance on the embedded SQLite (one per document): a curl must answer below 400, a
CLI command must exit 0. A synopsis (``[--option]``, ``…``) cannot run as written: its command
must exist and take every option it shows. What cannot run offline or is abbreviated is listed
in ``NOT_RUN`` with the reason, and that list must stay exact, so a new example is either run
or consciously listed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import run_server
from tests.sources.test_poshvip import EXPORT

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell", "console", ""}
SYNOPSIS = re.compile(r"\[-|\[[A-Z]+\]|\.\.\.|…|YYYY|\bN\b\]")
PROGRAMS = ("curl", "signup-sync", ".venv/bin/signup-sync")

# Examples that are not run, by document and first line, with the reason.
NOT_RUN: dict[tuple[str, str], str] = {
    ("README.md", ".venv/bin/signup-sync serve"): "the served instance itself",
    ("docs/connectors.md", "signup-sync sync zoom"): "calls Zoom's API (online)",
    ("docs/privacy.md", "curl -X POST ... -d '{\"phone\": \"+1 305 555 0188\"}' "
     "http://localhost:8001/privacy/erase"): "abbreviates the line above",
    ("docs/privacy.md", "curl -X POST ... -d '{\"phone\": \"(305) 555-0188\", "
     "\"phone_region\": \"US\"}' ..."): "abbreviates the line above",
}  # fmt: skip
# Placeholders the documents use, and what the served instance is given for them.
WRITE_KEY = "wk_live_8f2c..."
PLACEHOLDERS = {WRITE_KEY: "wk_test_docs_0001"}
# Answers an example may give besides success: the id stands for one the reader has.
ALSO_FINE: dict[tuple[str, str], int] = {
    ("docs/privacy.md", "curl -X DELETE -H \"Authorization: Bearer $TOKEN\" "
     "http://localhost:8001/leads/42"): 404,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Example:
    doc: str
    line: int
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return self.doc, self.text

    @property
    def synopsis(self) -> bool:
        text = self.text
        for placeholder, value in PLACEHOLDERS.items():
            text = text.replace(placeholder, value)
        return bool(SYNOPSIS.search(text))


def _balanced(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def _commands(block: str) -> Iterator[tuple[int, str]]:
    """(line offset, command) for each command, backslash continuations joined."""
    lines = block.split("\n")
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        while i + 1 < len(lines):
            if text.endswith("\\"):
                text = text[:-1].rstrip() + " " + lines[i + 1].strip()
            elif not _balanced(text):
                text += "\n" + lines[i + 1]  # a quoted body spanning lines
            else:
                break
            i += 1
        i += 1
        text = text.strip()
        if text.split(" ", 1)[0] in PROGRAMS:
            yield start, text


def examples() -> list[Example]:
    found = []
    for path in DOCS:
        doc = str(path.relative_to(ROOT))
        content = path.read_text()
        for fence in FENCE.finditer(content):
            if fence.group(1) not in SHELL:
                continue
            first = content.count("\n", 0, fence.start(2)) + 1
            for offset, text in _commands(fence.group(2)):
                found.append(Example(doc, first + offset, _without_comment(text)))
    return found


def _without_comment(text: str) -> str:
    """The command without a trailing shell comment (a ``#`` after a blank, outside quotes)."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and i and text[i - 1].isspace():
            return text[:i].rstrip()
    return text


ALL = examples()


def test_the_list_of_examples_not_run_is_exact() -> None:
    keys = {e.key for e in ALL}
    assert set(NOT_RUN) <= keys, f"listed but gone: {sorted(set(NOT_RUN) - keys)}"
    assert set(ALSO_FINE) <= keys, f"listed but gone: {sorted(set(ALSO_FINE) - keys)}"
    assert len(ALL) >= 20  # the extraction still finds the documents' examples


def _cli_bin(tmp_path: Path) -> Path:
    """A ``signup-sync`` on PATH and at ``.venv/bin`` that runs this checkout."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "signup-sync"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m signup_sync.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _argv(example: Example, base_url: str, env: dict[str, str]) -> list[str]:
    text = example.text.replace("http://localhost:8001", base_url)
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    argv = [os.path.expandvars(arg) if "$" in arg else arg for arg in shlex.split(text)]
    return [arg.replace("$TOKEN", env["TOKEN"]) for arg in argv]


def _run(example: Example, cwd: Path, env: dict[str, str], base_url: str) -> None:
    argv = _argv(example, base_url, env)
    where = f"{example.doc}:{example.line}: {example.text}"
    if argv[0] == "curl":
        argv += ["-sS", "-o", str(cwd / "answer"), "-w", "%{http_code}"]
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        status = int(done.stdout.strip() or 0)
        answer = (cwd / "answer").read_text(errors="replace")[:500]
        fine = {ALSO_FINE[example.key]} if example.key in ALSO_FINE else set()
        assert status and (status < 400 or status in fine), f"{where} -> {status} {answer}"
        return
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{where} -> exit {done.returncode}\n{done.stdout}{done.stderr}"


def _check_synopsis(example: Example, cwd: Path, env: dict[str, str]) -> None:
    words = shlex.split(example.text)
    path = []
    for word in words[1:3]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        path.append(word)
    options = set(re.findall(r"(--[a-z][a-z-]*)", example.text))
    for depth in (2, 1):
        done = subprocess.run(
            [words[0], *path[:depth], "--help"], cwd=cwd, env=env, capture_output=True, text=True
        )
        if done.returncode == 0:
            break
    where = f"{example.doc}:{example.line}: {example.text}"
    assert done.returncode == 0, f"{where}: no such command\n{done.stderr}"
    missing = sorted(o for o in options if o not in done.stdout)
    assert not missing, f"{where}: options not taken: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("doc", sorted({e.doc for e in ALL}))
def test_every_example_runs_as_written(doc: str, tmp_path: Path) -> None:
    bin_dir = _cli_bin(tmp_path)
    (tmp_path / "posh-orders.csv").write_bytes(EXPORT)
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    database = f"sqlite:///{tmp_path / 'signup_sync.db'}"
    served = {"AUTO_MIGRATE": "true", "SEGMENT_WRITE_KEYS": PLACEHOLDERS[WRITE_KEY]}
    with run_server(database, tmp_path, extra_env=served) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGARDE_", "SIGNUP_"))}
        env.update(
            {
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(ROOT / "src"),
                "ENGARDE_DATABASE_URL": database,
                "SIGNUP_SYNC_SERVICE_TOKEN": server.token,
                "TOKEN": server.token,
            }
        )
        for example in (e for e in ALL if e.doc == doc):
            if example.key in NOT_RUN:
                continue
            if example.synopsis:
                _check_synopsis(example, tmp_path, env)
            else:
                _run(example, tmp_path, env, server.url)
