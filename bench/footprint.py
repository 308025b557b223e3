"""Resident memory at rest: `apranova serve --workers N` against the bare SELECT app.

    python -m bench.footprint [--workers 2] [--settle 3]

Starts both on a fresh database that is already migrated (as bench.load does, so the
processes start as a deployment's usually do), waits until they answer and `--settle`
seconds more, then prints each process's resident memory and the API's over the SELECT
app's, process for process. Run it on two commits to compare what a process loads.
"""

from __future__ import annotations

import argparse
import time

from bench.load import bench_stack, processes, rss_mb, servers


def resident(server_pid: int) -> tuple[float, list[float]]:
    """The serving process's resident memory and its worker processes', largest first, MB
    (the multiprocessing helper, a few MB, is left out)."""
    children = [pid for pid, parent, _ in processes() if parent == server_pid]
    return rss_mb(server_pid), sorted((mb for pid in children if (mb := rss_mb(pid)) > 50),
                                      reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=3.0, help="s to wait once ready")
    args = parser.parse_args()
    with bench_stack("footprint", pool_size=10) as stack, \
            servers(stack, args.workers) as up:
        time.sleep(args.settle)
        api, select = resident(up.api.pid), resident(up.select.pid)
    print("process            apranova MB   SELECT app MB   ratio")
    rows = [("serving", api[0], select[0])] + [
        (f"worker {i + 1}", a, s) for i, (a, s) in enumerate(zip(api[1], select[1],
                                                                  strict=False))]
    for name, a, s in rows:
        print(f"{name:<18} {a:>11.0f} {s:>15.0f} {a / s if s else 0:>7.2f}")
    total_api, total_select = api[0] + sum(api[1]), select[0] + sum(select[1])
    print(f"footprint workers={args.workers} apranova_mb={total_api:.0f} "
          f"select_mb={total_select:.0f} ratio={total_api / total_select:.2f}")


if __name__ == "__main__":
    main()
