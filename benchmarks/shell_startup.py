"""Start-up cost of ``manage.py shell``: ours against Django's own, side by side.

1. ``manage.py shell -c pass`` with django-devcommands installed vs the same project without
   it (Django's own ``shell``), interleaved, repeated; medians and their ratio. Target: ours
   costs no more than 1.05x Django's.
2. Time to the first prompt of each interface under a pseudo-terminal (bpython, IPython,
   ptpython, plain), from spawning ``manage.py shell --NAME`` to the prompt on screen.

Usage: python benchmarks/shell_startup.py [--runs 21] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
sys.path.insert(0, str(ROOT))

from tests.repl import PROMPTS, Session  # noqa: E402

TARGET = 1.05


def environment(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "EXAMPLE_DB": str(tmp / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        "HOME": str(home),
        "PYTHONSTARTUP": "",
        "TERM": "xterm",
    }


def run_once(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), *args],
        env=env,
        cwd=EXAMPLE,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def first_prompt(env: dict[str, str], name: str) -> float | None:
    import pexpect

    start = time.perf_counter()
    child = pexpect.spawn(
        sys.executable,
        [str(EXAMPLE / "manage.py"), "shell", "-i", name],
        env=env,
        cwd=str(EXAMPLE),
        encoding="utf-8",
        dimensions=(40, 160),
    )
    session = Session(child)
    try:
        head = session.expect(PROMPTS[name], timeout=30)
        elapsed = time.perf_counter() - start
        if "instead." in head:  # fell back: this interface is not installed here
            return None
        return elapsed
    finally:
        child.terminate(force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--prompt-runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ours = environment(Path(tmp))
        django_own = {**ours, "EXAMPLE_WITHOUT_DEVCOMMANDS": "1"}
        subprocess.run(
            [
                sys.executable,
                str(EXAMPLE / "manage.py"),
                "demo",
                "--no-serve",
                "--pages",
                "50",
                "-v0",
            ],
            env=ours,
            cwd=EXAMPLE,
            check=True,
        )
        # Warm the file system cache and .pyc files for both before measuring.
        for env in (ours, django_own):
            run_once(env, "shell", "-c", "pass")
        times: dict[str, list[float]] = {"devcommands": [], "django": []}
        for i in range(args.runs):
            # Interleave, alternating which goes first, so drift hits both alike.
            pair = [("devcommands", ours), ("django", django_own)]
            for label, env in pair if i % 2 == 0 else reversed(pair):
                times[label].append(run_once(env, "shell", "-c", "pass"))
        ours_ms = statistics.median(times["devcommands"]) * 1000
        theirs_ms = statistics.median(times["django"]) * 1000
        ratio = ours_ms / theirs_ms

        prompts: dict[str, float | None] = {}
        for name in ("bpython", "ipython", "ptpython", "python"):
            samples = [first_prompt(ours, name) for _ in range(args.prompt_runs)]
            prompts[name] = None if None in samples else statistics.median(samples) * 1000  # type: ignore[type-var]

    print(f"shell -c pass, median of {args.runs} interleaved runs")
    print(f"  django-devcommands shell : {ours_ms:8.1f} ms")
    print(f"  Django's own shell       : {theirs_ms:8.1f} ms")
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"  ratio                    : {ratio:8.3f}x  (target <= {TARGET}x: {verdict})")
    print(f"time to first prompt under a pty, median of {args.prompt_runs}")
    for name, value in prompts.items():
        shown = "not installed" if value is None else f"{value:8.1f} ms"
        print(f"  {name:<9}: {shown}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "ours_ms": ours_ms,
                    "django_ms": theirs_ms,
                    "ratio": ratio,
                    "prompt_ms": prompts,
                    "runs": args.runs,
                    "samples": times,
                },
                indent=2,
            )
        )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
