"""Runs the hostile spec corpus in a process of its own (so a crash cannot take pytest down).

Usage: python tests/hostile_runner.py CORPUS.jsonl WORKDIR.  For every entry it writes the text
to a file, parses it, and builds and imports what parses (NumPy backend), each under a 10 s
alarm; it prints one JSON line per entry: {"id", "outcome": "error"|"accept"|"crash"|"hang",
"message", "seconds"}.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def main() -> int:
    corpus, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    import symgrad
    from symgrad.loader import import_backend

    signal.signal(signal.SIGALRM, _alarm)
    for line in corpus.read_text().splitlines():
        entry = json.loads(line)
        path = workdir / "specs" / f"{entry['id']}.json"
        path.write_text(entry["text"], encoding="utf-8", errors="surrogatepass")
        started = time.perf_counter()
        signal.alarm(10)
        try:
            result = symgrad.build(path, out=workdir / "out", backend="numpy")
            module = import_backend(result.package_dir, "numpy")
            theta = module.initial_parameters()
            X = np.full((3, module.N_INPUTS), 0.25, dtype=module.DTYPE)
            T = np.full((3, module.N_OUTPUTS), 0.5, dtype=module.DTYPE)
            loss, grad = module.gradient(theta, X, T)
            if grad.shape != theta.shape:
                raise AssertionError("gradient has the wrong shape")
            outcome, message = "accept", f"loss {loss!r}"
        except symgrad.SpecError as error:
            outcome, message = "error", str(error)
        except Hang:
            outcome, message = "hang", "over 10 s"
        except BaseException:  # noqa: BLE001 -- anything else is what the test is looking for
            outcome, message = "crash", traceback.format_exc(limit=6)
        finally:
            signal.alarm(0)
        print(json.dumps({"id": entry["id"], "outcome": outcome, "message": message,
                          "seconds": round(time.perf_counter() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
