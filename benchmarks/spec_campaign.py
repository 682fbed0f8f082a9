"""A long run of generated specs through the oracle of tests/specgen.py ("proof by generation").

    python benchmarks/spec_campaign.py [--count 10000] [--seed 0] [--jobs 2] [--out DIR]
                                       [--timeout 120] [--shrink-budget 150] [--no-shrink]

Spec number k has seed `seed + k`, so any spec of a campaign can be made again with
`tests.specgen.generate(seed)`. Each is compiled as `netspec compile` does and, when accepted,
built and run and compared with the analysis (see tests/specgen.py). Specs are judged in worker
processes (`--jobs`), each spec with a time limit (`--timeout`, a hang is a failure too).

Writes to `--out` (default /tmp/campaign_failures): every failing spec as
`failures/seed-N.yaml` (exactly the text that failed; its overrides are in the summary), for
each failure signature the shortest failing spec shrunk by deleting lines and tokens while the
signature stays the same as `minimal/NN.yaml`, and `summary.json`: how many specs were
rejected, accepted and agreeing, too big to build, failures per signature (with seeds, message,
frame and the minimal spec), and specs per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def init_worker() -> None:
    """One XLA thread per worker (the workers are the parallelism); a private netspec cache."""
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()
    os.environ["NETSPEC_CACHE"] = tempfile.mkdtemp(prefix="netspec-campaign-cache-")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def judge_text(text: str, overrides: list[str], seed: int = -1) -> dict[str, Any]:
    """The oracle's verdict on one spec text, as a plain dict."""
    from tests.specgen import GeneratedSpec, judge

    with tempfile.TemporaryDirectory(prefix="netspec-campaign-") as folder:
        start = time.perf_counter()
        verdict = judge(GeneratedSpec(seed, text, overrides), Path(folder))
        seconds = time.perf_counter() - start
    return {**vars(verdict), "seconds": seconds}


def work(seed: int) -> dict[str, Any]:
    """Generate and judge the spec of `seed`."""
    from tests.specgen import generate

    spec = generate(seed)
    result = judge_text(spec.text, spec.overrides, seed)
    return {
        **result,
        "seed": seed,
        "text": spec.text,
        "overrides": spec.overrides,
        "notes": spec.notes,
        "mutated": bool(spec.notes),
    }


# ---- shrinking --------------------------------------------------------------------------------

TOKEN = re.compile(r"\$\{[^}\n]*\}|[^\s\[\]{},:=]+|[\[\]{},:=]")


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" ")) if line.strip() else 1 << 30


def shrink(job: tuple[str, list[str], str, int]) -> dict[str, Any]:
    """The smallest variant of a failing spec that still fails with the same signature: drop
    overrides, then YAML subtrees (a line and the lines indented under it), chunks of lines
    and single tokens, round after round until nothing more goes or `budget` judgements are
    spent."""
    text, overrides, signature, budget = job
    tries = 0

    def fails(candidate: list[str], sets: list[str]) -> bool:
        nonlocal tries
        if not candidate or tries >= budget:
            return False
        tries += 1
        return judge_text("\n".join(candidate) + "\n", sets)["signature"] == signature

    lines = text.rstrip("\n").split("\n")
    for override in list(overrides):
        if fails(lines, [o for o in overrides if o != override]):
            overrides = [o for o in overrides if o != override]
    changed = True
    while changed and tries < budget:
        changed = False
        index = 0
        while index < len(lines):  # subtrees
            end = index + 1
            while end < len(lines) and indent(lines[end]) > indent(lines[index]):
                end += 1
            if end - index > 1 and fails(lines[:index] + lines[end:], overrides):
                lines, changed = lines[:index] + lines[end:], True
            else:
                index += 1
        chunk = max(1, len(lines) // 2)
        while chunk >= 1 and tries < budget:  # chunks of lines, halving
            start = 0
            while start < len(lines):
                candidate = lines[:start] + lines[start + chunk :]
                if fails(candidate, overrides):
                    lines, changed = candidate, True
                else:
                    start += chunk
            chunk //= 2
        for index in range(len(lines)):  # tokens
            for token in reversed(list(TOKEN.finditer(lines[index]))):
                line = lines[index]
                cut = (line[: token.start()] + line[token.end() :]).rstrip()
                candidate = [*lines[:index], cut, *lines[index + 1 :]]
                if fails(candidate, overrides):
                    lines, changed = candidate, True
    final = "\n".join(lines) + "\n"
    return {**judge_text(final, overrides), "text": final, "overrides": overrides, "tries": tries}


# ---- the campaign -----------------------------------------------------------------------------


def run_all(seeds: list[int], jobs: int, timeout: float) -> list[dict[str, Any]]:
    """Judge every seed in `jobs` worker processes; a spec over `timeout` seconds is a failure
    (its worker is replaced and the campaign goes on after it)."""
    results: list[dict[str, Any]] = []
    pending = list(seeds)
    done = 0
    start = time.perf_counter()
    while pending:
        pool = multiprocessing.get_context("spawn").Pool(
            jobs, initializer=init_worker, maxtasksperchild=200
        )
        iterator = pool.imap(work, pending, chunksize=1)
        try:
            for seed in list(pending):
                try:
                    result = iterator.next(timeout=timeout)
                except multiprocessing.TimeoutError:
                    from tests.specgen import generate

                    spec = generate(seed)
                    result = {
                        "seed": seed,
                        "outcome": "failure",
                        "signature": f"timeout (over {timeout:.0f} s)",
                        "message": "the spec took too long",
                        "frame": "",
                        "phase": "",
                        "detail": "",
                        "seconds": timeout,
                        "text": spec.text,
                        "overrides": spec.overrides,
                        "notes": spec.notes,
                        "mutated": bool(spec.notes),
                    }
                    results.append(result)
                    pending = pending[pending.index(seed) + 1 :]
                    raise
                results.append(result)
                pending = pending[1:]
                done += 1
                if done % 100 == 0:
                    rate = done / (time.perf_counter() - start)
                    counts = Counter(r["outcome"] for r in results)
                    print(f"{done}/{len(seeds)} specs, {rate:.2f}/s, {dict(counts)}", flush=True)
        except multiprocessing.TimeoutError:
            pool.terminate()
            continue
        finally:
            pool.terminate()
            pool.join()
    return results


def git_state() -> str:
    """The commit the campaign ran on, and whether the working tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "netspec"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" with uncommitted changes in netspec/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="how many specs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first spec")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--out", default="/tmp/campaign_failures", help="where results go")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per spec")
    parser.add_argument("--shrink-budget", type=int, default=150, help="judgements per shrink")
    parser.add_argument("--no-shrink", action="store_true", help="do not shrink failures")
    args = parser.parse_args(argv)

    out = Path(args.out)
    (out / "failures").mkdir(parents=True, exist_ok=True)
    (out / "minimal").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run_all(list(range(args.seed, args.seed + args.count)), args.jobs, args.timeout)
    seconds = time.perf_counter() - start

    failures = [r for r in results if r["outcome"] == "failure"]
    by_signature: dict[str, list[dict[str, Any]]] = {}
    for r in failures:
        by_signature.setdefault(r["signature"], []).append(r)
        (out / "failures" / f"seed-{r['seed']}.yaml").write_text(r["text"], encoding="utf-8")

    signatures = []
    ordered = sorted(by_signature.items(), key=lambda item: -len(item[1]))
    for number, (signature, group) in enumerate(ordered):
        shortest = min(group, key=lambda r: (len(r["text"]), len(r["overrides"])))
        entry = {
            "signature": signature,
            "count": len(group),
            "seeds": [r["seed"] for r in group][:50],
            "message": shortest["message"],
            "frame": shortest["frame"],
            "phase": shortest["phase"],
            "example_seed": shortest["seed"],
            "example_overrides": shortest["overrides"],
            "detail": shortest["detail"][-1500:],
        }
        minimal = {"text": shortest["text"], "overrides": shortest["overrides"]}
        if not args.no_shrink and not signature.startswith("timeout"):
            pool = multiprocessing.get_context("spawn").Pool(1, initializer=init_worker)
            try:
                job = (shortest["text"], shortest["overrides"], signature, args.shrink_budget)
                shrunk = pool.apply_async(shrink, (job,)).get(args.timeout * 10)
                if shrunk["signature"] == signature:
                    minimal = shrunk
            except multiprocessing.TimeoutError:
                pass
            finally:
                pool.terminate()
                pool.join()
        entry["minimal_text"] = minimal["text"]
        entry["minimal_overrides"] = minimal["overrides"]
        entry["minimal_message"] = minimal.get("message", shortest["message"])
        (out / "minimal" / f"{number:02d}.yaml").write_text(minimal["text"], encoding="utf-8")
        signatures.append(entry)

    counts = Counter(r["outcome"] for r in results)
    clean = [r for r in results if not r["mutated"]]
    summary = {
        "specs": len(results),
        "seed": args.seed,
        "jobs": args.jobs,
        "netspec": git_state(),
        "seconds": round(seconds, 1),
        "specs_per_second": round(len(results) / seconds, 3),
        "rejected": counts["rejected"],
        "rejected_by_the_check": sum(
            1 for r in results if r["outcome"] == "rejected" and r["phase"] == "check"
        ),
        "accepted_by_the_analysis": counts["agreed"]
        + counts["too_big"]
        + sum(1 for r in failures if r["phase"] != "compile"),
        "accepted_and_agree": counts["agreed"],
        "accepted_too_big_to_build": counts["too_big"],
        "failures": len(failures),
        "failures_by_phase": dict(Counter(r["phase"] or "timeout" for r in failures)),
        "failure_signatures": len(by_signature),
        "unmutated_specs": {
            "count": len(clean),
            **Counter(r["outcome"] for r in clean),
        },
        "by_signature": signatures,
        "failing_seeds": {str(r["seed"]): r["overrides"] for r in failures},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")

    print(
        f"{len(results)} specs in {seconds:.0f} s ({summary['specs_per_second']} specs/s, "
        f"{args.jobs} jobs) on netspec {summary['netspec']}: {counts['rejected']} rejected, "
        f"{counts['agreed']} accepted and agreeing, {counts['too_big']} too big to build, "
        f"{len(failures)} failures in {len(by_signature)} signatures"
    )
    for entry in signatures:
        print(f"\n{entry['count']:5d}  {entry['signature']}")
        print(f"       e.g. seed {entry['example_seed']}: {entry['minimal_message'][:200]}")
        sets = " ".join(f"--set {o}" for o in entry["minimal_overrides"])
        print("       minimal spec" + (f" ({sets})" if sets else "") + ":")
        print("".join(f"         {line}\n" for line in entry["minimal_text"].splitlines()), end="")
    print(f"\nwritten to {out}/ (summary.json, failures/, minimal/)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
