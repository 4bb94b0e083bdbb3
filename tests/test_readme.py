"""The README's main example runs and prints exactly what the README shows."""

import contextlib
import io
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, content) of every fenced code block, in order."""
    blocks, lang, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                blocks.append((lang, "\n".join(lines)))
                lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def test_readme_example_output_matches(tmp_path, monkeypatch):
    blocks = fenced_blocks(README.read_text())
    # The main example and the training example are the first two Python blocks;
    # each is followed by a plain block with what it prints.
    runs = []
    for k, (lang, content) in enumerate(blocks):
        if lang == "python" and k + 1 < len(blocks) and blocks[k + 1][0] == "":
            runs.append((content, blocks[k + 1][1]))
    assert len(runs) >= 2, "README lost its example and its output"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code, shown in runs[:2]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README", "exec"), namespace)
        assert out.getvalue().rstrip("\n").splitlines() == shown.splitlines()
