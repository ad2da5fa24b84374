"""Memory and decision cost with a large embedded credit dataset (issue 17, goal 3).

    .venv/bin/python bench/scale.py [--subjects 1000000] [--rounds 10] [--batch 640]

1. Writes the demo gateway's state (partners, demo dataset) into a temporary
   directory, then a synthetic platform export of ``--subjects`` subjects
   (JSON Lines; 70% residents, 30% enterprises, ids with correct check
   characters from gateway/identifiers.py, records copied from the demo's
   record shapes), and loads it into the same dataset with the real bulk
   import, ``xinyi-gateway data import`` (a separate process, so its memory
   is not counted below).
2. Builds the gateway in this process on that dataset (as bench/stages.py
   does), warms it, settles the garbage collector as ``serve`` does, and runs
   ``--fill`` decisions for distinct large-dataset subjects (uncounted: the
   record cache, 100,000 subjects by default, fills up), then interleaved
   rounds of decisions through the decision handler at
   concurrency 64: one round of the demo request mix (bench/run.py, "demo"),
   one of requests for random subjects of the large dataset ("large": the
   demo requests that need no consent, with a random subject of the same
   kind), the very same requests again ("large-again": their records now in
   the record cache, so large minus large-again is what a record-cache miss
   costs, and large-again minus demo-same what the subjects' other records
   cost), one of those same requests for their demo subjects ("demo-same":
   the like-for-like comparison), and so on. Every answer must be 200.
3. Prints VmRSS / VmHWM of this process (the one worker) and, per kind, the
   median over rounds of CPU µs and wall µs per decision and the outcomes.
   ``--profile DIR``: cProfile of each kind's timed stretches (DIR/<kind>.prof)
   and the functions whose own time differs most between large and
   large-again (slows the decisions: not for the timing figures).

Request objects are built just before each batch, outside the timed stretch.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import logging
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(HERE.parent)]

import run as bench_run  # noqa: E402 - bench/run.py
from stages import mocked  # noqa: E402 - bench/stages.py

from adapters.credit.wire import record_json  # noqa: E402
from gateway.api.decisions import create_decision  # noqa: E402
from gateway.api.keys import GATEWAY  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.cli import _settle_gc  # noqa: E402
from gateway.demo import prepare_demo, seed_consents, write_demo_json  # noqa: E402
from gateway.identifiers import synthetic_ric, synthetic_uscc  # noqa: E402

CONCURRENCY = 64
SAMPLE = 80_000  # subjects of each kind the decisions pick from (ids kept in memory)


def memory() -> dict[str, int]:
    """VmRSS (anonymous and file-backed parts) and VmHWM of this process, in kB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def write_export(
    path: Path, subjects: int, templates: list[dict[str, Any]], seed: int
) -> dict[str, list[str]]:
    """The synthetic export; returns a sample of the subject ids written, by kind."""
    rng = random.Random(seed)
    ids: dict[str, set[str]] = {"person": set(), "enterprise": set()}
    earliest = dt.date(1950, 1, 1).toordinal()
    n = 0
    with path.open("wb") as out:
        while n < subjects:
            if rng.random() < 0.7:
                kind = "person"
                birth = dt.date.fromordinal(earliest + rng.randrange(18_000))
                sid = synthetic_ric(rng, birth)
            else:
                kind, sid = "enterprise", synthetic_uscc(rng)
            if sid in ids[kind]:
                continue  # the generators can repeat an id; every subject is distinct
            ids[kind].add(sid)
            # One record each, a second for every fourth subject: ~1.25 rows per subject.
            for k in range(1 + (n % 4 == 0)):
                record = dict(rng.choice(templates), record_id=f"bulk-{n:07d}-{k}")
                out.write(orjson.dumps({"subject_kind": kind, "subject_id": sid} | record) + b"\n")
            n += 1
    counts = {kind: len(v) for kind, v in ids.items()}
    print(f"subjects written: {counts}", flush=True)
    return {kind: rng.sample(sorted(v), min(len(v), SAMPLE)) for kind, v in ids.items()}


async def rounds(
    app: Any,
    demo_pool: list[dict[str, Any]],
    same_shapes: list[dict[str, Any]],
    big_pool: Any,
    args: argparse.Namespace,
) -> dict[str, list[tuple[float, float]]]:
    middleware = app.middlewares[0]

    kinds = ("demo", "large", "large-again", "demo-same")
    outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    profiles = {kind: cProfile.Profile() for kind in kinds} if args.profile else {}

    async def batch(requests: list[dict[str, Any]], kind: str) -> tuple[float, float]:
        reqs = [mocked(app, r) for r in requests]
        profile = profiles.get(kind)
        if profile is not None:
            profile.enable()
        c0, w0 = time.process_time(), time.perf_counter()
        responses = await asyncio.gather(*(middleware(q, create_decision) for q in reqs))
        c1, w1 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.disable()
        for q, resp in zip(reqs, responses, strict=True):
            if resp.status != 200:
                raise RuntimeError(f"{q.path}: {resp.status} {resp.body!r}")
            outcomes[kind][orjson.loads(resp.body)["outcome"]] += 1
        # aiohttp's mocked requests are unittest.mock objects, ~130 kB each in
        # reference cycles (a class per Mock): left to the collector's raised
        # thresholds they piled up to ~80 MB and were most of the RSS growth this
        # bench used to report. Collected here, untimed; a served gateway has none.
        del reqs, responses
        gc.collect()
        return c1 - c0, w1 - w0

    async def one_round(take: Any, kind: str = "") -> tuple[float, float]:
        cpu = wall = 0.0
        for _ in range(args.batch // CONCURRENCY):
            c, w = await batch([take() for _ in range(CONCURRENCY)], kind)
            cpu, wall = cpu + c, wall + w
        per = 1e6 / (args.batch // CONCURRENCY * CONCURRENCY)
        return cpu * per, wall * per

    sent: list[dict[str, Any]] = []

    def big_logged() -> dict[str, Any]:
        """A large-dataset request, kept for the large-again round."""
        request = big_pool()
        sent.append(request)
        return request

    rng = random.Random(2)
    out: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    if args.trace:
        tracemalloc.start(args.trace)
        snapshots = [tracemalloc.take_snapshot()]
    for _ in range(2):  # warm both kinds, uncounted
        await one_round(lambda: rng.choice(demo_pool))
        await one_round(big_pool)
    # Steady state: enough distinct large-dataset subjects to fill the record cache
    # (settings.records_cache_size, 100,000 by default), uncounted.
    for i in range(args.fill // CONCURRENCY):
        reqs = [mocked(app, big_pool()) for _ in range(CONCURRENCY)]
        await asyncio.gather(*(middleware(q, create_decision) for q in reqs))
        del reqs
        gc.collect()  # the mocked requests' cycles (see batch)
        if i % 300 == 0:
            print(f"  filling, {i * CONCURRENCY} decisions: {memory()}", flush=True)
    _settle_gc()
    print(f"  measured rounds start: {memory()}", flush=True)
    if args.trace:
        snapshots.append(tracemalloc.take_snapshot())
    outcomes.clear()  # the warm-up's and fill's do not count
    for i in range(args.rounds):
        out["demo"].append(await one_round(lambda: rng.choice(demo_pool), "demo"))
        sent.clear()
        out["large"].append(await one_round(big_logged, "large"))
        again = iter(list(sent))  # the same requests, in the same order
        out["large-again"].append(await one_round(again.__next__, "large-again"))
        out["demo-same"].append(await one_round(lambda: rng.choice(same_shapes), "demo-same"))
        print(f"  round {i + 1}: {memory()}", flush=True)
    if args.trace:
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot())
        tracemalloc.stop()
        for what, (a, b) in (
            ("warm-up and fill", snapshots[:2]),
            ("measured rounds", snapshots[1:]),
        ):
            print(f"\nlargest growth over the {what} (tracemalloc, by traceback):")
            for stat in b.compare_to(a, "traceback")[:12]:
                print(f"{stat.size_diff / 1024:+.0f} kB in {stat.count_diff:+d} blocks")
                for line in stat.traceback.format()[-2 * args.trace :]:
                    print("   ", line)
    for kind in kinds:
        print(f"  outcomes, {kind}: {dict(sorted(outcomes[kind].items()))}")
    if args.profile:
        report_profiles(profiles, Path(args.profile), args.rounds * args.batch)
    return out


def report_profiles(profiles: dict[str, cProfile.Profile], out: Path, decisions: int) -> None:
    """Saves each kind's profile; prints where large and large-again differ most."""
    out.mkdir(parents=True, exist_ok=True)
    own: dict[str, dict[str, float]] = {}
    for kind, profile in profiles.items():
        profile.dump_stats(out / f"{kind}.prof")
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        own[kind] = {
            f"{Path(file).name}:{line}({name})": tottime
            for (file, line, name), (_, _, tottime, _, _) in stats.items()
        }
    per = 1e6 / decisions
    names = set(own["large"]) | set(own["large-again"])
    diffs = sorted(
        ((own["large"].get(n, 0.0) - own["large-again"].get(n, 0.0)) * per, n) for n in names
    )
    total = sum(d for d, _ in diffs)
    print(
        f"\ncProfile, own time per decision (profiled, so inflated): large minus"
        f" large-again {total:+.1f} µs in all; largest differences:"
    )
    for diff, name in sorted(diffs, key=lambda d: -abs(d[0]))[:30]:
        large = own["large"].get(name, 0.0) * per
        print(f"  {diff:+7.2f} µs  (large {large:6.2f})  {name}")


async def serve_and_measure(tmp: Path, setup: Any, ids: dict[str, list[str]], args: Any) -> None:
    from gateway.settings import load_settings

    logging.disable(logging.CRITICAL)
    overrides = setup.settings_overrides()
    if args.records_cache_size is not None:
        overrides["records_cache_size"] = args.records_cache_size
    settings = load_settings(None, overrides)
    app = await create_app(settings)
    gw = app[GATEWAY]
    try:
        await seed_consents(setup, gw.consents.create, gw.now())
        demo = orjson.loads(write_demo_json(setup, settings.issuer).read_bytes())
        demo_pool = bench_run.build_requests(demo)
        # Requests needing no consent can be asked for any subject of the same kind.
        kinds = {s["id"]: s["kind"] for s in demo["subjects"]}
        templates = [
            (kinds[orjson.loads(r["body"])["subject"]["id"]], r)
            for r in demo_pool
            if "consent_id" not in orjson.loads(r["body"])
        ]
        templates = [(k, r) for k, r in templates if ids[k]]
        if not templates:
            raise RuntimeError("no demo request without consent to reuse")
        rng = random.Random(3)

        def big() -> dict[str, Any]:
            kind, template = rng.choice(templates)
            body = orjson.loads(template["body"])
            body["subject"]["id"] = rng.choice(ids[kind])
            return template | {"body": orjson.dumps(body).decode()}

        before = memory()
        print(f"gateway built and seeded: {before}", flush=True)
        result = await rounds(app, demo_pool, [r for _, r in templates], big, args)
        after = memory()
    finally:
        await gw.close()
    print(
        f"\nlarge-dataset decisions pick from {len(ids['person'])} residents and"
        f" {len(ids['enterprise'])} enterprises of it; {len(templates)} request shapes reused"
    )
    print(
        f"RSS of the worker after serving: VmRSS {after['VmRSS'] / 1024:.1f} MB"
        f" (anonymous {after['RssAnon'] / 1024:.1f} MB, file-backed {after['RssFile'] / 1024:.1f}"
        f" MB), VmHWM {after['VmHWM'] / 1024:.1f} MB"
    )
    for kind, values in result.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        print(
            f"{kind:>6}: median of {len(values)} rounds: {cpu:.0f} µs CPU, "
            f"{wall:.0f} µs wall per decision (concurrency {CONCURRENCY})"
        )


def generate_and_import(tmp: Path, dataset: Path, subjects: int) -> dict[str, list[str]]:
    """Write the export in a child process, bulk-import it into ``dataset``; the id sample."""
    export = tmp / "export.jsonl"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(HERE),
            "--subjects",
            str(subjects),
            "--write-export",
            str(tmp / "generator"),  # its own demo state: keys differ from ours
            str(export),
        ],
        check=True,
    )
    ids = orjson.loads(export.with_suffix(".ids.json").read_bytes())
    print(
        f"export written: {export.stat().st_size / 2**20:.0f} MB"
        f" in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    t0 = time.perf_counter()
    cli = Path(sys.executable).with_name("xinyi-gateway")
    subprocess.run([str(cli), "data", "import", str(export), "--dataset", str(dataset)], check=True)
    print(
        f"bulk import: {time.perf_counter() - t0:.0f} s; dataset"
        f" {dataset.stat().st_size / 2**20:.0f} MB",
        flush=True,
    )
    export.unlink()
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description="RSS and decision cost on a large dataset")
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=640, help="decisions per round and kind")
    parser.add_argument(
        "--fill", type=int, default=128_000, help="uncounted large-dataset decisions first"
    )
    parser.add_argument("--records-cache-size", type=int, help="override the setting")
    parser.add_argument(
        "--trace",
        type=int,
        default=0,
        metavar="FRAMES",
        help="tracemalloc over the measured rounds: the largest growth, by traceback"
        " (slows the decisions: not for the timing figures)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile each kind's measured stretches into DIR/<kind>.prof and print"
        " where large and large-again differ (slows the decisions: not for the timing figures)",
    )
    parser.add_argument("--keep", metavar="DIR", help="use (and keep) this directory")
    parser.add_argument(
        "--dataset",
        metavar="PATH",
        help="reuse the imported dataset saved at PATH (and PATH.ids.json) if it exists;"
        " otherwise generate and import it, then save it there",
    )
    parser.add_argument("--write-export", nargs=2, metavar=("DIR", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_export:  # the child that writes the export, so its memory is not counted
        setup_dir, export = map(Path, args.write_export)
        setup = prepare_demo(setup_dir, dt.datetime.now(dt.UTC).date(), rate_per_second=1e9)
        templates = [record_json(r) for s in setup.subjects for r in s.records]
        sample = write_export(export, args.subjects, templates, seed=17)
        export.with_suffix(".ids.json").write_bytes(orjson.dumps(sample))
        return 0
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xinyi-scale-"))
    try:
        setup = prepare_demo(tmp, dt.datetime.now(dt.UTC).date(), rate_per_second=1e9)
        saved = Path(args.dataset) if args.dataset else None
        if saved is not None and saved.exists():
            # The demo's records are in the saved copy too (the import added to them).
            shutil.copyfile(saved, setup.dataset)
            ids = orjson.loads(saved.with_suffix(".ids.json").read_bytes())
            print(f"dataset reused from {saved}", flush=True)
        else:
            ids = generate_and_import(tmp, setup.dataset, args.subjects)
            if saved is not None:
                shutil.copyfile(setup.dataset, saved)
                saved.with_suffix(".ids.json").write_bytes(orjson.dumps(ids))
        import uvloop

        uvloop.run(serve_and_measure(tmp, setup, ids, args))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
