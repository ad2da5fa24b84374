"""Time `policy prove`: each policy's proof in-process, and the whole command end to end.

    .venv/bin/python bench/prove.py [--dir DIR] [--repeat N]

In-process: every policy file in DIR is proved N times from scratch (a fresh
encoding and solver each time); the median and the slowest run are printed.
End to end: `xinyi-gateway policy prove --dir DIR` in a subprocess, N times,
Python start-up and imports included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gateway.policy.prove import prove_policy
from gateway.policy.prove_cmd import load_sources

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=str(ROOT / "policies"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    catalogue, benefits, policies = load_sources(Path(args.dir))
    print(f"{'policy file':<24} {'rules':>5} {'findings':>8} {'median ms':>10} {'max ms':>8}")
    for file, policy in policies:
        runs = []
        findings = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            proof = prove_policy(policy, catalogue, benefits, file)
            runs.append((time.perf_counter() - started) * 1000)
            findings = len(proof.findings)
            assert not proof.refuted, proof.refuted
        print(
            f"{file:<24} {len(policy.rules):>5} {findings:>8} "
            f"{statistics.median(runs):>10.1f} {max(runs):>8.1f}"
        )
    command = [str(ROOT / ".venv/bin/xinyi-gateway"), "policy", "prove", "--dir", args.dir]
    walls = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"policy prove exited {done.returncode}:\n{done.stdout.decode()}")
    print(
        f"`{' '.join(command[1:])}` end to end: median {statistics.median(walls):.2f} s, "
        f"max {max(walls):.2f} s over {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
