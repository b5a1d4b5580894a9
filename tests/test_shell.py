"""The ``shell`` command: real REPLs in a real pseudo-terminal, real fallbacks.

In the ``py311-norepl`` tox env (``DEVCOMMANDS_EXPECT_NO_REPLS=1``) bpython, IPython and
ptpython are not installed: the same tests then assert the fallback to the plain shell
instead of skipping, so both envs prove something.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from django_devcommands import shells
from tests.conftest import EXAMPLE, MANAGE, manage
from tests.repl import PROMPTS, Session

NO_REPLS = os.environ.get("DEVCOMMANDS_EXPECT_NO_REPLS") == "1"
RICH = ["bpython", "ipython", "ptpython"]
PAGES = 25  # what example_env loads


def installed(name: str) -> bool:
    """Whether a REPL is installed here, asserting it matches what the tox env promises."""
    present = shells.INTERFACES[name].available()
    if name != "python":
        assert present != NO_REPLS, (
            f"{name} {'is' if present else 'is not'} importable, but DEVCOMMANDS_EXPECT_NO_REPLS="
            f"{os.environ.get('DEVCOMMANDS_EXPECT_NO_REPLS')!r}: the env does not test what it claims"
        )
    return present


def masked_env(env: dict[str, str], tmp_path: Path, *modules: str) -> dict[str, str]:
    """An env in which importing ``modules`` fails, as if they were not installed."""
    mask = tmp_path / "mask"
    for module in modules:
        package = mask / module
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('{module} masked by the test')\n")
    return {**env, "PYTHONPATH": os.pathsep.join([str(mask), env["PYTHONPATH"]])}


# -- choosing (unit) ----------------------------------------------------------------------


def fake_available(*present: str):
    return lambda interface: interface.name in present or interface.name == "python"


CONFIG = ["bpython", "ipython", "ptpython", "python"]


@pytest.mark.parametrize(
    ("requested", "present", "terminal", "started", "warning"),
    [
        ("bpython", ["bpython", "ipython"], True, "bpython", None),
        (None, ["ipython"], True, "ipython", None),  # configured order: silent
        (None, [], True, "python", None),
        ("plain", ["bpython"], True, "python", None),
        (
            "bpython",
            ["ipython"],
            True,
            "ipython",
            'bpython is not installed (pip install "django-devcommands[bpython]"); '
            "starting IPython instead.",
        ),
        (
            "ptpython",
            [],
            True,
            "python",
            'ptpython is not installed (pip install "django-devcommands[ptpython]"); '
            "starting the plain Python shell instead.",
        ),
        (
            "bpython",
            ["bpython", "ipython"],
            False,
            "python",
            "bpython needs a terminal on stdin and stdout; starting the plain Python shell instead.",
        ),
    ],
)
def test_choose(requested, present, terminal, started, warning) -> None:
    choice = shells.choose(
        requested, CONFIG, terminal=terminal, is_available=fake_available(*present)
    )
    assert choice.interface.name == started
    assert choice.warning == warning


def test_choose_follows_configured_order() -> None:
    order = ["ptpython", "bpython", "python"]
    choice = shells.choose(
        None, order, terminal=True, is_available=fake_available("bpython", "ptpython")
    )
    assert choice.interface.name == "ptpython"


def test_import_error_inside_a_started_repl_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 2009 recipe's bug: an ImportError from inside the REPL started another shell."""

    def broken(namespace, **kwargs):
        raise ImportError("raised by the user's code")

    monkeypatch.setitem(shells.STARTERS, "python", broken)
    with pytest.raises(ImportError, match="raised by the user's code"):
        shells.start(shells.INTERFACES["python"], {}, no_startup=True, stderr=sys.stderr)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain", "python"),
        ("IPython", "ipython"),
        ("bpython", "bpython"),
        ("idle", None),
        (3, None),
    ],
)
def test_canonical_name(name, expected) -> None:
    assert shells.canonical_name(name) == expected


# -- non-interactive: -c and stdin ----------------------------------------------------------


def test_command_option_sees_auto_imports(example_env) -> None:
    result = manage(example_env, "shell", "-v0", "-c", "print(Page.objects.count())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(PAGES)


def test_no_imports(example_env) -> None:
    result = manage(example_env, "shell", "--no-imports", "-c", "print('Page' in globals())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "flag", [[], ["--bpython"], ["--ipython"], ["-i", "ptpython"], ["--plain"]]
)
def test_piped_stdin_is_executed_in_the_project(example_env, flag) -> None:
    # A pipe is never handed to bpython, whose embed() would re-exec a bare interpreter.
    code = "import os\nprint('pages', Page.objects.count())\nprint('pid', os.getpid())\n"
    result = manage(example_env, "shell", "-v0", *flag, input=code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"pages {PAGES}"
    assert lines[1].startswith("pid ")
    assert result.stderr == ""


def test_error_in_command_exits_non_zero(example_env) -> None:
    result = manage(example_env, "shell", "-c", "import no_such_module_xyz")
    assert result.returncode != 0
    assert "ModuleNotFoundError: No module named 'no_such_module_xyz'" in result.stderr


def test_unknown_interface_is_a_usage_error(example_env) -> None:
    result = manage(example_env, "shell", "-i", "idle")
    assert result.returncode == 2
    assert "invalid choice: 'idle'" in result.stderr


# -- real REPLs in a pseudo-terminal --------------------------------------------------------


def start(spawn, *args: str, env=None) -> Session:
    return Session(spawn("shell", *args, env=env))


@pytest.mark.pty
@pytest.mark.parametrize("name", [*RICH, "python"])
def test_repl_in_a_terminal(spawn, name) -> None:
    session = start(spawn, f"--{name}" if name != "python" else "--plain")
    started = name if installed(name) else "python"
    head = session.expect(PROMPTS[started])
    if started != name:
        label = shells.INTERFACES[name].label
        assert f'{label} is not installed (pip install "django-devcommands[{name}]"); ' in head
        assert "starting the plain Python shell instead." in head
    assert "Traceback" not in head
    session.sendline('"=%d=" % (1 + 1)')  # the echo never contains the answer
    session.expect("=2=")
    session.expect(PROMPTS[started])
    session.sendline("Page.objects.count() + 1000")  # an auto-imported model, on Django 4.2 too
    session.expect(str(1000 + PAGES))
    session.expect(PROMPTS[started])
    session.sendline("exit()")
    assert session.wait_exit() == 0
    assert "Traceback" not in session.output()


@pytest.mark.pty
def test_fallback_when_the_choice_is_missing(spawn, example_env, tmp_path) -> None:
    """bpython masked for real: one warning line, then the next configured interface."""
    env = masked_env(example_env, tmp_path, "bpython")
    session = start(spawn, "--bpython", env=env)
    following = "ipython" if installed("ipython") else "python"
    head = session.expect(PROMPTS[following])
    label = shells.INTERFACES[following].label
    warning = f'bpython is not installed (pip install "django-devcommands[bpython]"); starting {label} instead.'
    assert warning in head
    assert "Traceback" not in head
    session.sendline("Page.objects.count()")
    session.expect(str(PAGES))
    session.expect(PROMPTS[following])
    session.sendline("exit()")
    assert session.wait_exit() == 0


@pytest.mark.pty
def test_everything_masked_ends_in_plain_python(spawn, example_env, tmp_path) -> None:
    env = masked_env(example_env, tmp_path, "bpython", "IPython", "ptpython")
    session = start(spawn, "--ptpython", env=env)
    head = session.expect(PROMPTS["python"])
    assert "(InteractiveConsole)" in head
    assert "starting the plain Python shell instead." in head
    session.sendline("exit()")
    assert session.wait_exit() == 0


@pytest.mark.pty
def test_full_screen_repl_without_a_terminal_on_stdout(example_env) -> None:
    """stdin a terminal, stdout a pipe: bpython would misbehave, so the plain shell starts."""
    import pexpect

    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(MANAGE))} shell --bpython | cat"
    child = pexpect.spawn(
        "bash", ["-c", command], env=example_env, cwd=str(EXAMPLE), encoding="utf-8", timeout=30
    )
    try:
        session = Session(child)
        head = session.expect(PROMPTS["python"])
        if installed("bpython"):
            assert (
                "bpython needs a terminal on stdin and stdout; starting the plain Python shell"
                in head
            )
        session.sendline("print(Page.objects.count())")
        session.expect(str(PAGES))
        session.sendline("exit()")
        assert session.wait_exit() == 0
    finally:
        child.terminate(force=True)


@pytest.mark.pty
@pytest.mark.parametrize("name", ["bpython", "python"])
def test_import_error_at_the_prompt_surfaces(spawn, name) -> None:
    if not installed(name):
        name = "python"
    session = start(spawn, "-i", name)
    session.expect(PROMPTS[name])
    session.sendline("import no_such_module_xyz")
    session.expect("No module named 'no_such_module_xyz'")
    session.expect(PROMPTS[name])
    session.sendline('"=%d=" % (40 + 2)')  # still the same REPL
    session.expect("=42=")
    session.expect(PROMPTS[name])
    session.sendline("exit()")
    assert session.wait_exit() == 0
    # No second shell was started after the error.
    out = session.output()
    assert "IPython" not in out
    assert out.count("(InteractiveConsole)") == (1 if name == "python" else 0)


@pytest.fixture
def startup_env(example_env, tmp_path) -> dict[str, str]:
    startup = tmp_path / "startup.py"
    startup.write_text("STARTUP_VALUE = 41 + 1\nimport no_such_module_in_startup\n")
    return {**example_env, "PYTHONSTARTUP": str(startup)}


@pytest.mark.pty
def test_startup_file_error_is_printed_and_the_shell_starts(spawn, startup_env) -> None:
    session = start(spawn, "--plain", env=startup_env)
    head = session.expect(PROMPTS["python"])
    assert "No module named 'no_such_module_in_startup'" in head
    assert head.count("(InteractiveConsole)") == 1  # the same shell, not a fallback
    session.sendline('"=%d=" % STARTUP_VALUE')
    session.expect("=42=")
    session.expect(PROMPTS["python"])
    session.sendline("exit()")
    assert session.wait_exit() == 0


@pytest.mark.pty
def test_no_startup_skips_the_startup_file(spawn, startup_env) -> None:
    session = start(spawn, "--plain", "--no-startup", env=startup_env)
    head = session.expect(PROMPTS["python"])
    assert "no_such_module_in_startup" not in head
    session.sendline("STARTUP_VALUE")
    session.expect("NameError: name 'STARTUP_VALUE' is not defined")
    session.sendline("exit()")
    assert session.wait_exit() == 0


@pytest.mark.pty
def test_plain_shell_completes_auto_imports(spawn) -> None:
    session = start(spawn, "--plain")
    session.expect(PROMPTS["python"])
    session.send("Page.object\t")
    session.expect(r"Page\.objects")
    session.sendline(".count() + 1000")
    session.expect(str(1000 + PAGES))
    session.sendline("exit()")
    assert session.wait_exit() == 0
