"""Reindex throughput, side by side in one run against one real Solr 9:

* ours      ``manage.py solr --reindex`` (keyset batches, JSON updates, one commit)
* haystack  django-haystack's ``update_index`` (the peer), same fields, same schema
* ceiling   pre-built JSON documents POSTed straight to Solr (only the HTTP + Solr cost)

for the example's pages at each size (default 10k and 100k rows), plus the peak RSS of
our reindex process at each size. Every tool indexes into a fresh core made from the
configset ``solr --schema`` writes, on the same local Solr; ``--update-log off`` makes
those cores without Solr's transaction log (what ``SOLR_UPDATE_LOG = False`` does),
``--update-log on off`` measures both.

Usage::

    python benchmarks/reindex.py                 # 10000 and 100000 rows
    python benchmarks/reindex.py --sizes 2000    # a quick look
    python benchmarks/reindex.py --sizes 10000 --update-log on off

django-haystack is not a dependency of django-devcommands: the first run makes a
virtualenv of its own (~/.cache/django-devcommands/bench-reindex-venv) with
django-haystack, pysolr and Django 5.2, and re-runs itself there. Needs Java 17+ and
Maven for the local Solr (see django_devcommands.solr.local).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
VENV = Path(os.path.expanduser("~/.cache/django-devcommands/bench-reindex-venv"))
REQUIREMENTS = [
    "Django>=5.2,<5.3",
    "django-haystack>=3.3",
    "pysolr>=3.9",
    "requests>=2.28",
    "orjson>=3.9",  # our solr extra's JSON encoder
]
BATCH = 1000


def ensure_environment() -> None:
    """Re-run under a virtualenv that has django-haystack, creating it on first use."""
    from importlib.util import find_spec

    if not all(find_spec(m) for m in ("haystack", "pysolr", "requests", "django", "orjson")):
        python = VENV / "bin" / "python"
        if Path(sys.executable).resolve() == python.resolve():
            sys.exit(f"the benchmark virtualenv {VENV} still lacks one of {REQUIREMENTS}")
        if not python.exists():
            print(f"creating {VENV}", flush=True)
            venv.create(VENV, with_pip=True)
        print(f"installing {', '.join(REQUIREMENTS)} into {VENV}", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
        os.execv(str(python), [str(python), *sys.argv])


def child_env(db: str, url: str, core: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        "DJANGO_SETTINGS_MODULE": "benchmarks.haystack_settings",
        "EXAMPLE_DB": db,
        "EXAMPLE_SOLR_URL": url,
        "EXAMPLE_SOLR_COLLECTION": core,
        "BENCH_HAYSTACK_URL": f"{url}/{core}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# -- the measured work, each in a process of its own ----------------------------------------


def run_child(tool: str, url: str, core: str) -> dict[str, float]:
    import django

    django.setup()
    from django.core.management import call_command

    from django_devcommands.solr import indexer
    from django_devcommands.solr.client import SolrClient
    from django_devcommands.solr.indexes import registry

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    client = SolrClient(url, timeout=120)
    if tool == "ours":
        start, cpu = time.perf_counter(), time.process_time()
        call_command("solr", "--reindex", "--batch-size", str(BATCH), verbosity=0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    elif tool == "haystack":
        start, cpu = time.perf_counter(), time.process_time()
        call_command("update_index", "--batch-size", str(BATCH), verbosity=0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    elif tool == "ceiling":
        index = registry.all()[0]
        encode = indexer.json_encoder()  # the bytes ours would send, built before the clock
        bodies = [
            encode([index.prepare(obj) for obj in rows])
            for rows in indexer.keyset_batches(index.get_queryset(), BATCH)
        ]
        session = client.session
        start, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            response = session.post(
                f"{url}/{core}/update",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            response.raise_for_status()
        client.commit(core)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    else:
        raise SystemExit(f"unknown tool {tool}")
    client.commit(core)
    docs = client.count(core)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "docs": docs,
        "seconds": seconds,
        "cpu": cpu,
        "rss_mb": peak / 1024,
        "base_rss_mb": base_rss / 1024,
    }


# -- the run ------------------------------------------------------------------------------


def load_pages(db: str, count: int) -> None:
    env = child_env(db, "http://127.0.0.1:9/solr", "none")
    env["DJANGO_SETTINGS_MODULE"] = "exampleproject.settings"
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=EXAMPLE)
    subprocess.run(
        [*manage, "load_pages", "--count", str(count), "--clear", "-v0"],
        env=env,
        check=True,
        cwd=EXAMPLE,
    )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tool: str, db: str, url: str, core: str, solr_pid: int) -> dict[str, float]:
    """One tool in a process of its own; adds the CPU seconds Solr spent meanwhile."""
    before = process_cpu(solr_pid)
    result = _measure(tool, db, url, core)
    result["solr_cpu"] = process_cpu(solr_pid) - before
    return result


def _measure(tool: str, db: str, url: str, core: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", tool, "--url", url, "--core", core],
        env=child_env(db, url, core),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}  # type: ignore[dict-item]
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--tools", nargs="+", default=["ceiling", "ours", "haystack"])
    parser.add_argument("--repeat", type=int, default=2, help="rounds per size (best kept)")
    parser.add_argument(
        "--update-log",
        nargs="+",
        choices=["on", "off"],
        default=["on"],
        help="cores with Solr's transaction log (on, the default), without (off), or both",
    )
    parser.add_argument("--workdir", default="/tmp/devcommands-bench-reindex")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--core", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.url, args.core)))
        return
    ensure_environment()
    sys.path[:0] = [str(ROOT), str(EXAMPLE)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "exampleproject.settings"
    import django

    django.setup()
    from django_devcommands.solr import local, schema
    from django_devcommands.solr.client import SolrClient
    from django_devcommands.solr.indexes import registry

    def new_core(name: str, log: str) -> None:
        if client.core_exists(name):
            client.unload_core(name)
        client.create_core(name, "bench", {} if log == "on" else {schema.ULOG_PROPERTY: "false"})

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    solr = local.start("standalone", home=work / "solr", heap="1g", timeout=900)
    print(
        f"Solr {solr.url} up in {time.perf_counter() - started:.1f}s "
        f"(python {sys.version.split()[0]}, pid {solr.pid})",
        flush=True,
    )
    client = SolrClient(solr.url, timeout=120)
    schema.write_configset(Path(solr.home) / "configsets" / "bench" / "conf", registry.all())
    results: dict[tuple[int, str], dict[str, dict[str, float]]] = {}
    try:
        # Warm Solr's JIT up first, so the first tool measured is not the one that pays.
        warm = str(work / "pages-warmup.sqlite3")
        if not Path(warm).exists():
            load_pages(warm + ".tmp", 10000)
            os.replace(warm + ".tmp", warm)
        for log in args.update_log:
            for tool in [*args.tools, *args.tools]:
                new_core("bench_warmup", log)
                try:
                    measure(tool, warm, solr.url, "bench_warmup", solr.pid)
                finally:
                    client.unload_core("bench_warmup")
        for size in args.sizes:
            db = str(work / f"pages-{size}.sqlite3")
            if not Path(db).exists():
                print(f"loading {size} pages...", flush=True)
                load_pages(db + ".tmp", size)
                os.replace(db + ".tmp", db)
            for log in args.update_log:
                results[size, log] = {}
            # Tools (and update log settings) take turns, --repeat rounds; the best round
            # of each is kept, so a burst of load from elsewhere on the machine does not
            # decide the ratio.
            for round_ in range(args.repeat):
                for log, tool in [(log, tool) for log in args.update_log for tool in args.tools]:
                    core = f"bench_{tool}_{size}"
                    new_core(core, log)
                    by_tool = results[size, log]
                    label = f"{tool} (log {log})" if len(args.update_log) > 1 else tool
                    try:
                        r = measure(tool, db, solr.url, core, solr.pid)
                    finally:
                        client.unload_core(core)
                    if "error" in r:
                        print(f"{size:>7} {label:<9} FAILED: {r['error']}", flush=True)
                        by_tool.setdefault(tool, r)
                        continue
                    print(
                        f"{size:>7} {label:<9} round {round_ + 1}: {r['docs']:>7.0f} docs "
                        f"{r['seconds']:7.2f}s {r['docs'] / r['seconds']:9,.0f} docs/s  "
                        f"peak RSS {r['rss_mb']:6.1f} MB  CPU s: client {r['cpu']:5.2f} "
                        f"Solr {r['solr_cpu']:5.2f}",
                        flush=True,
                    )
                    best = by_tool.get(tool, {})
                    if "seconds" not in best or r["seconds"] < best["seconds"]:
                        r["rss_mb"] = max(r["rss_mb"], best.get("rss_mb", 0))
                        by_tool[tool] = r
                    else:
                        best["rss_mb"] = max(r["rss_mb"], best["rss_mb"])
    finally:
        solr.stop()
    print()
    print("best of", args.repeat, "round(s):")
    print("size    log  ours docs/s  haystack docs/s  ceiling docs/s  vs haystack  vs ceiling")
    for (size, log), by_tool in results.items():
        ours = by_tool.get("ours", {})
        if "seconds" not in ours:
            continue
        rate = ours["docs"] / ours["seconds"]
        line = f"{size:>7} {log:>4} {rate:12,.0f}"
        for peer in ("haystack", "ceiling"):
            other = by_tool.get(peer, {})
            line += (
                f" {other['docs'] / other['seconds']:15,.0f}"
                if "seconds" in other
                else "             n/a"
            )
        for peer in ("haystack", "ceiling"):
            other = by_tool.get(peer, {})
            line += (
                f"  {rate / (other['docs'] / other['seconds']):9.2f}x"
                if "seconds" in other
                else "        n/a"
            )
        print(line)
    print()
    print("CPU seconds per 1000 docs (client + Solr; insensitive to other load):")
    for (size, log), by_tool in results.items():
        line = f"{size:>7} {log:>4}"
        for tool in args.tools:
            r = by_tool.get(tool, {})
            if "cpu" in r:
                line += f"  {tool} {1000 * (r['cpu'] + r['solr_cpu']) / r['docs']:.3f}"
        print(line)
    for log in args.update_log:
        rss = {s: results.get((s, log), {}).get("ours", {}).get("rss_mb") for s in args.sizes}
        sizes = [s for s in args.sizes if rss[s] is not None]
        if len(sizes) >= 2:
            growth = rss[sizes[-1]] - rss[sizes[0]]  # type: ignore[operator]
            print(
                f"peak RSS growth of ours from {sizes[0]} to {sizes[-1]} rows "
                f"(log {log}): {growth:.1f} MB"
            )


if __name__ == "__main__":
    main()
