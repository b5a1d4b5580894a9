"""System checks and the live settings object: the ids are a public interface."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from django_devcommands.conf import conf


def ids() -> list[str]:
    return [message.id for message in checks.run_checks() if message.id.startswith("devcommands.")]


def test_defaults_are_clean() -> None:
    with override_settings(DEVCOMMANDS={}):
        assert ids() == []


def test_missing_setting_is_clean(settings) -> None:
    del settings.DEVCOMMANDS
    assert ids() == []
    assert conf.SHELL_INTERFACES == ["bpython", "ipython", "ptpython", "python"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bpython", ["devcommands.E001"]),
        ({"SHELL_INTERFACE": ["python"]}, ["devcommands.W001"]),
        ({"SHELL_INTERFACES": "bpython"}, ["devcommands.E002"]),
        ({"SHELL_INTERFACES": []}, ["devcommands.E002"]),
        ({"SHELL_INTERFACES": ["bpython", "idle"]}, ["devcommands.E003"]),
        ({"SHELL_INTERFACES": ["plain", "IPython"]}, []),
    ],
)
def test_check_ids(value, expected) -> None:
    with override_settings(DEVCOMMANDS=value):
        assert ids() == expected


def test_unknown_key_hint_names_the_closest_key() -> None:
    with override_settings(DEVCOMMANDS={"SHELL_INTERFACE": ["python"]}):
        [message] = [m for m in checks.run_checks() if m.id == "devcommands.W001"]
    assert message.hint == "Did you mean 'SHELL_INTERFACES'?"


def test_settings_are_read_live() -> None:
    with override_settings(DEVCOMMANDS={"SHELL_INTERFACES": ["ptpython"]}):
        assert conf.SHELL_INTERFACES == ["ptpython"]
    assert conf.SHELL_INTERFACES != ["ptpython"]
