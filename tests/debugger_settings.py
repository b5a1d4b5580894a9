"""The example project plus a failing view and the post-mortem middleware (debugger tests)."""

import os

from exampleproject.settings import *  # noqa: F403
from exampleproject.settings import MIDDLEWARE

ROOT_URLCONF = "tests.debugger_urls"
if os.environ.get("TARGET_MIDDLEWARE", "1") == "1":
    MIDDLEWARE = [*MIDDLEWARE, "django_devcommands.debugger.PostMortemMiddleware"]
DEVCOMMANDS = {
    "SHELL_INTERFACES": ["bpython", "ipython", "ptpython", "python"],
    "DEBUGGERS": os.environ.get("TARGET_DEBUGGERS", "bpdb,ipdb,pudb,pdb").split(","),
    "DEBUGGER_REMOTE": os.environ.get("TARGET_REMOTE", "1") == "1",
    "DEBUGGER_REMOTE_TIMEOUT": float(os.environ.get("TARGET_REMOTE_TIMEOUT", "20")),
    "DEBUGGER_FORCE": os.environ.get("TARGET_FORCE", "0") == "1",
    "BREAKPOINT": os.environ.get("TARGET_BREAKPOINT", "0") == "1",
}
