"""Run every benchmark in sequence, each as its own process, then print a one-screen summary.

    .venv/bin/python bench/run_all.py [--quick] [--only sql health ...] [--keep-templates]
    .venv/bin/python bench/run_all.py --drop-templates        # only drop every cached benchmark template

The benchmarks share cached target templates (bench/common.py): the ones this run built are dropped at the
end unless --keep-templates. --quick runs smaller sizes (100,000 reports) as a smoke test; its figures are
not the ones the goals are judged on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent

# (name, script, full-size arguments, quick arguments). Benchmarks that share a template run next to each
# other: sql + rehearsal (10k users / 1M reports, unmigrated), access + evidence + health (20k users / 1M reports).
BENCHES = [
    ("sql", "bench_sql.py", [],
     ["--reports", "100000", "--organizations", "100", "--repeat", "2"]),
    ("rehearsal", "bench_rehearsal.py", [],
     ["--reports", "100000", "--users", "1000"]),
    ("access", "bench_access.py", [],
     ["--reports", "100000", "--users", "2000", "--subjects", "50"]),
    ("evidence", "bench_evidence.py", [],
     ["--reports", "100000", "--users", "2000", "--organizations", "20"]),
    ("health", "bench_health.py", [],
     ["--reports", "100000", "--users", "2000", "--organizations", "100", "--runs", "2"]),
    ("lookup", "bench_lookup.py", [],
     ["--reports", "100000", "--users", "10000", "--organizations", "100", "--samples", "50"]),
    ("history", "bench_history.py", [],
     ["--runs", "5000", "--events", "100000", "--repeat", "5"]),
    ("platform", "bench_platform.py", [],
     ["--reports", "100000", "--users", "1000", "--rehearsal-reports", "20000", "--rehearsal-users", "200"]),
    ("live", "bench_live.py", [],
     ["--users", "20", "--seconds", "15"]),
]


def run_one(name: str, script: str, extra: list[str]) -> dict:
    command = [sys.executable, str(HERE / script), *extra]
    print(f"\n{'=' * 100}\n== {name}: bench/{script} {' '.join(extra)}\n{'=' * 100}", flush=True)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", prefix=f"bench_{name}_") as headlines:
        env = dict(os.environ, **{common.KEEP_TEMPLATES_VAR: "1", common.HEADLINE_FILE_VAR: headlines.name})
        started = time.monotonic()
        code = subprocess.run(command, cwd=common.ROOT, env=env).returncode
        seconds = time.monotonic() - started
        figures = [json.loads(line) for line in headlines.read().splitlines() if line.strip()]
    print(f"== {name}: exit {code} after {seconds:.0f} s", flush=True)
    return {"name": name, "code": code, "seconds": seconds, "figures": figures}


def summary(results: list[dict], quick: bool, dropped: list[str]) -> None:
    print(f"\n{'=' * 100}\nSUMMARY{' (--quick: smoke-test sizes, not judged figures)' if quick else ''}")
    rows = []
    for result in results:
        status = "ok" if result["code"] == 0 else f"FAILED (exit {result['code']})"
        rows.append((result["name"], f"[run {result['seconds']:.0f} s, {status}]", "", ""))
        for fig in result["figures"]:
            verdict = {True: "OK", False: "MISS", None: ""}[fig["ok"]]
            rows.append(("", fig["figure"], fig["value"], f"{fig['goal']} {verdict}".strip()))
        if result["code"] == 0 and not result["figures"]:
            rows.append(("", "(no headline figures recorded)", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip())
    misses = sum(1 for r in results for f in r["figures"] if f["ok"] is False)
    failed = [r["name"] for r in results if r["code"] != 0]
    total = sum(r["seconds"] for r in results)
    print(f"\n{len(results)} benchmarks in {total / 60:.1f} min; failed: {', '.join(failed) or 'none'}; "
          f"goals missed: {misses}; templates dropped: {len(dropped)}")


def drop_templates(names: list[str]) -> list[str]:
    for name in names:
        common.drop(name)
        print(f"dropped template {name}", flush=True)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100,000 reports): a smoke run")
    parser.add_argument("--only", nargs="+", choices=[b[0] for b in BENCHES], help="run only these benchmarks")
    parser.add_argument("--keep-templates", action="store_true", help="keep the templates this run built")
    parser.add_argument("--drop-templates", action="store_true",
                        help="drop every cached benchmark template (cp_bench_tmpl_*) and exit")
    args = parser.parse_args()
    if args.drop_templates:
        drop_templates(common.bench_templates())
        return 0

    existing = set(common.bench_templates())
    results = []
    try:
        for name, script, full, quick in BENCHES:
            if args.only and name not in args.only:
                continue
            results.append(run_one(name, script, quick if args.quick else full))
    finally:
        built = [name for name in common.bench_templates() if name not in existing]
        dropped = [] if args.keep_templates else drop_templates(built)
        if args.keep_templates and built:
            print(f"kept templates: {', '.join(built)} (drop with: bench/run_all.py --drop-templates)")
    summary(results, args.quick, dropped)
    return 0 if all(r["code"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
