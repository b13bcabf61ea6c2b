"""CSV files for the tests (mixtures.csv, per-utterance scores)."""

import csv


def write_csv(path, fields, rows):
  """Writes ``rows`` (dicts) under a header of ``fields``, making parents."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
