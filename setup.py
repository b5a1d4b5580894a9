"""Shim so ``python setup.py develop`` keeps working; the metadata lives in pyproject.toml."""

from setuptools import setup

setup()
