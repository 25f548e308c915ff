"""What the reliability checks cost on a large campaign file.

Builds a synthetic campaign through the store's public API (no oracle, no surrogate): 100
surfaces x 1,000 SMILES-only adsorbates = 100,000 pairs, `--labels` labels (default 20,000) with a
provenance of about 4 kB each (an MLIP label's placements list is of that size), and
`--rounds` rounds with a 5-member checkpoint of 1 MB per member. Then measures, best of
`--repeat`:

* ``open_read_s``: `CampaignStore.open(path)` (what every read-only command pays);
* ``open_write_s``: `CampaignStore.open(path, write=True)`: lock, writability check and the
  `PRAGMA quick_check` before the session's first write (the difference is the check's cost);
* ``quick_check_s``: the quick check alone;
* ``full_check_s``: `alloop check` (`integrity_check` + reading every row);
* ``backup_s``: one backup with SQLite's online backup API (what a round pays when
  `backup.every_rounds: 1`), and the backup's size;
* ``add_label_s``: one label written (one transaction, synchronous=FULL), mean of 200;
* ``reads_under_load``: what `alloop status`, `history` (one round, and all), `show` and a
  dashboard frame take (their plain functions, campaign opened each time as the commands do)
  while another process writes a label every few milliseconds; and how long that writer's
  transactions take meanwhile. Each round of the synthetic campaign has 2,000 acquisitions.

Run: .venv/bin/python benchmarks/store/reliability_costs.py   (about 2-4 min)
Writes benchmarks/results/store_reliability.json and .md. The page cache is warm (the file was
just written); a cold read from disk costs more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase.build import fcc111

from alloop.store import CampaignStore
from alloop.store.backup import write_backup
from alloop.store.integrity import check_campaign, refuse_damaged
from alloop.store.records import NewAcquisition, NewAdsorbate, NewLabel, NewSurface

RESULTS = Path(__file__).resolve().parents[1] / "results"


def build(path: Path, n_labels: int, n_rounds: int, seed: int = 0) -> None:
    surfaces = [
        NewSurface(f"s{i:03d}", fcc111("Pt", (2, 2, 3), vacuum=6.0 + 0.01 * i), "bench", "1,1,1")
        for i in range(100)
    ]
    adsorbates = [
        NewAdsorbate(f"a{i:04d}", f"a{i:04d}", "C" * (1 + i % 6), None, ()) for i in range(1000)
    ]
    store = CampaignStore.create(
        path, name="bench", config={}, seed=seed, surfaces=surfaces, adsorbates=adsorbates
    )
    with store:
        keys = [p.key for p in store.pairs()]
        placements = [{"site": i, "energy_ev": -1.0 + 0.01 * i, "fmax": 0.04,
                       "positions": [[0.1 * i, 0.2, 0.3]] * 12} for i in range(8)]  # fmt: skip
        for i in range(n_labels):
            provenance = {"calculator": "bench", "placements": placements, "i": i}
            store.add_label(
                keys[(i * 7919) % len(keys)], NewLabel(-1.0 + 1e-4 * i, "ok", "mlip", provenance)
            )
        rng = os.urandom
        for r in range(n_rounds):
            store.begin_round(r, "started")
            batch = [NewAcquisition(keys[(r * 2000 + k) * 13 % len(keys)], k, 0.1, -1.0, 0.2, "lcb")
                     for k in range(2000)]  # fmt: skip
            store.record_acquisitions(r, batch)
            for member in range(5):
                store.save_checkpoint(r, member, rng(1_000_000), {"member": member})
            store.set_round_state(r, "closed", finished=True)


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(path: Path, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {"file_mb": path.stat().st_size / 1e6}
    out["open_read_s"] = best_of(repeat, lambda: CampaignStore.open(path).close())
    out["open_write_s"] = best_of(repeat, lambda: CampaignStore.open(path, write=True).close())
    with CampaignStore.open(path) as store:
        engine = store._engine  # noqa: SLF001 - measuring the check on the store's own engine
        out["quick_check_s"] = best_of(repeat, lambda: refuse_damaged(engine, str(path)))
    out["full_check_s"] = best_of(repeat, lambda: check_campaign(path))
    backups: list[Path] = []
    out["backup_s"] = best_of(repeat, lambda: backups.append(write_backup(path, 0, keep=1)))
    out["backup_mb"] = backups[-1].stat().st_size / 1e6
    with CampaignStore.open(path, write=True) as store:
        key = store.pairs()[0].key
        t0 = time.perf_counter()
        for _ in range(200):
            store.add_label(key, NewLabel(-1.0, "ok", "mlip", {"calculator": "bench"}))
        out["add_label_s"] = (time.perf_counter() - t0) / 200
    return out


WRITER = """
import sys, time
from alloop.store import CampaignStore
from alloop.store.records import NewLabel
store = CampaignStore.open(sys.argv[1], write=True)
key = store.pairs()[1].key
print("writing", flush=True)
times = []
while not sys.stdin.closed:
    t0 = time.perf_counter()
    store.add_label(key, NewLabel(-1.0, "ok", "mlip", {"calculator": "writer"}))
    times.append(time.perf_counter() - t0)
    if len(times) % 20 == 0 and sys.stdin.readable():
        import select
        if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.read(1):
            break
print(len(times), sum(times) / len(times), max(times), flush=True)
"""


def reads_under_load(path: Path, repeat: int) -> dict[str, Any]:
    """Read commands' functions while a second process writes labels as fast as it can."""
    import subprocess
    import sys

    from alloop.loop.face import commands
    from alloop.loop.face.dashboard import render_static, snapshot

    with CampaignStore.open(path) as store:
        pair = store.acquisitions(round_index=0)[0].pair_key
        last = store.rounds()[-1].index
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    out = {
        "status_s": best_of(repeat, lambda: commands.campaign_status(str(path))),
        "history_round_s": best_of(
            repeat, lambda: commands.campaign_history(str(path), round_index=last)
        ),
        "history_all_s": best_of(repeat, lambda: commands.campaign_history(str(path))),
        "show_s": best_of(repeat, lambda: commands.pair_story(str(path), pair)),
        "dashboard_frame_s": best_of(repeat, lambda: render_static(snapshot(str(path)), 120)),
    }
    written, mean_s, max_s = writer.communicate("")[0].split()
    out.update(writer_labels=int(written), writer_tx_mean_s=float(mean_s),
               writer_tx_max_s=float(max_s))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "store_reliability")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.alloop"
        t0 = time.perf_counter()
        build(path, args.labels, args.rounds)
        built_s = time.perf_counter() - t0
        result = {"labels": args.labels, "pairs": 100_000, "rounds": args.rounds,
                  "build_s": built_s, **measure(path, args.repeat),
                  **reads_under_load(path, args.repeat),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "load_avg": os.getloadavg()[0]}  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |"
                     for k, v in result.items())  # fmt: skip
    args.out.with_suffix(".md").write_text(
        "# Store reliability costs on a large campaign\n\n"
        "`benchmarks/store/reliability_costs.py` (synthetic campaign: 100,000 pairs, labels with "
        "~4 kB provenance, 2,000 acquisitions and 5 x 1 MB checkpoints per round; warm page cache; "
        "reads timed while another process writes labels; best of "
        f"{args.repeat}).\n\n| quantity | value |\n|---|---|\n{rows}\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
