"""The README tells a new user the truth: its test command is what CI runs, and the embedding
example it shows is the file CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```sh\n(.*?)```", quick_start, flags=re.S)]
    assert commands == [
        "python -m pip install -e . && python run.py",
        "python -m pip install -e '.[test]' && python -m pytest",
    ]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_lines


def test_readme_shows_examples_embed_py_as_it_is() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    embed = (ROOT / "examples" / "embed.py").read_text()
    assert embed in blocks
    assert len(embed.splitlines()) <= 40
