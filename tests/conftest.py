"""Shared test helpers: paths to ../shared, config writing, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SCRAPER_SHARED", ROOT.parent / "shared"))
SEED = SHARED / "seed"
CORPUS = SHARED / "corpus"
HEXO_CHECK = SHARED / "tools" / "hexo-check" / "hexo_check.sh"


def need(path: Path) -> Path:
    """Skip the test, saying why, when shared data is not next to the repo."""
    if not path.exists():
        pytest.skip(f"{path} is absent: tests that read ../shared/ need it beside the repo")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def make_config(
    path: Path, feeds: list[dict[str, Any]], **sections: dict[str, Any]
) -> Path:
    """Write a config file with the given [[feeds]] and sections; return its path."""
    sections.setdefault("http", {})
    sections["http"].setdefault("retries", 0)
    sections["http"].setdefault("timeout", 5)
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    for feed in feeds:
        lines.append("[[feeds]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in feed.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> CliResult:
    """Run the real `python -m scraper` in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPER_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "scraper", *args], capture_output=True, text=True,
        cwd=cwd, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


def front_matter_and_body(text: str) -> tuple[str, str]:
    """Split a post into its front matter (YAML text) and body."""
    text = text.lstrip("\n")
    assert text.startswith("---\n"), text[:80]
    _, fm, body = text.split("---\n", 2)
    return fm, body


def fold(text: str) -> str:
    return " ".join(text.split())
