import subprocess
import sys

from vois_cli import __version__


def _vois(*args):
    return subprocess.run([sys.executable, "-m", "vois_cli", *args], capture_output=True, text=True)


def test_version_prints_the_package_version():
    run = _vois("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"vois {__version__}"


def test_unknown_command_is_a_usage_error_with_exit_2():
    run = _vois("no-such-command")
    assert run.returncode == 2
    assert "No such command" in run.stderr
