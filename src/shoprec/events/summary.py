"""`shoprec events summary`: impressions and feedback per environment and model version."""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from shoprec.runs import state_dir


def spooled_records(spool_root: Path, environment: str | None = None) -> int:
    """Impression records waiting in spool files (not yet in the store)."""
    folders = [spool_root / environment] if environment else sorted(spool_root.glob("*"))
    total = 0
    for folder in folders:
        for path in folder.glob("*.jsonl"):
            try:
                total += path.read_bytes().count(b"\n")
            except OSError:
                continue
    return total


def summary_command(args: argparse.Namespace) -> int:
    """Print the summary as a table, or as JSON with --json."""
    from shoprec.events.store import SPOOL_DIR, EventStore

    store = EventStore()
    try:
        rows = store.summary(args.env)
    finally:
        store.dispose()
    spooled = spooled_records(state_dir() / SPOOL_DIR, args.env)
    if args.json:
        report = {
            "store": store.description,
            "rows": [asdict(row) for row in rows],
            "impressions": sum(row.impressions for row in rows),
            "spooled": spooled,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"event store: {store.description}")
    if not rows:
        print("no impressions or feedback events yet")
    else:
        header = ("ENVIRONMENT", "VERSION", "IMPRESSIONS", "FALLBACK", "CLICK", "ADD_TO_CART",
                  "PURCHASE")  # fmt: skip
        table = [header] + [
            (row.environment, row.model_version or "(unattributed)", str(row.impressions),
             str(row.fallback_impressions), str(row.click), str(row.add_to_cart),
             str(row.purchase))
            for row in rows
        ]  # fmt: skip
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        for line in table:
            print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    if spooled:
        print(f"{spooled} impression records are spooled, waiting for the store to be written")
    return 0
