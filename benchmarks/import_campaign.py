"""Round-trip campaign for `netspec import`: generated specs (tests/specgen.py) built, exported to
ONNX, imported back and compared (tests/test_import_generated.py's `round_trip`, many seeds).

    python -m benchmarks.import_campaign --seeds 300:520

Prints one line per seed and the tally; exits 1 if any spec disagrees or the import refuses one
the exporter wrote.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="300:400", help="START:STOP (default 300:400)")
    args = parser.parse_args()
    start, stop = (int(v) for v in args.seeds.split(":"))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_import_generated import round_trip

    tally: collections.Counter[str] = collections.Counter()
    bad = 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(start, stop):
            try:
                outcome = round_trip(seed, Path(folder))
            except AssertionError as error:
                outcome = "DISAGREES " + str(error).splitlines()[0][:200]
            kind = outcome.split(":")[0]
            tally[kind] += 1
            bad += kind.startswith(("DISAGREES", "import refused"))
            print(seed, outcome, flush=True)
    seconds = time.perf_counter() - began
    print(
        f"{stop - start} specs in {seconds:.0f} s: "
        + ", ".join(f"{k} {v}" for k, v in tally.items())
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
