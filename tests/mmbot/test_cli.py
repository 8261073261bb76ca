"""The ``mmbot`` command line: a broken command is a bug that propagates; a missing optional
dependency is one line naming the extra to install, exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmbot import cli


def test_a_broken_command_module_is_a_bug_not_a_missing_extra(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "nonexistent", "a command nobody wrote")
    with pytest.raises(ModuleNotFoundError, match="mmbot.commands.nonexistent"):
        cli.main(["nonexistent"])


@pytest.mark.slow
@pytest.mark.parametrize("blocked", ["pybit", "dotenv"])
def test_a_missing_extra_names_the_install_command(blocked):
    # an installation without the mmbot extra: the module cannot be imported
    code = (
        f"import sys; sys.modules[{blocked!r}] = None; from mmbot.cli import main; "
        "sys.exit(main(['run', '--out', 'x', '--duration', '1']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "obcore[mmbot]"' in lines[0] and blocked in lines[0]
