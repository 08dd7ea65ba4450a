"""SQLite's own time for the mirror's point lookups, from Python's sqlite3 module (C SQLite,
plus about 2 µs of Python a statement): the floor under `intercom-sync-bench lookups` on the
same mirror, in the same run. Reads the same statements the engine runs, with the same cache
size, over random keys, each statement after a pass over other keys.
Usage: bench-floors.py MIRROR [samples]
"""
import random
import sqlite3
import sys
import time

path = sys.argv[1]
samples = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
db.execute("PRAGMA cache_size = -32768")
random.seed(11)
columns = ("row_id, id, external_id, role, email, phone, name, avatar, owner_id, custom_attributes, "
           "created_at, updated_at, state, etag, fetched_at, validated_at")
qualified = ", ".join("contacts." + column for column in columns.split(", "))
rows = db.execute("SELECT email, name FROM contacts WHERE row_id % 37 = 0").fetchall()
emails = [random.choice(rows)[0].upper() for _ in range(samples)]
prefixes = [random.choice(rows)[1][:3] for _ in range(samples)]
other_rows = db.execute("SELECT email, name FROM contacts WHERE row_id % 41 = 1").fetchall()


def warm_keys(keys):
    return [row[0].upper() for row in other_rows] if keys is emails else [row[1][:3] for row in other_rows]


python_cost = []
for _ in range(samples):
    began = time.perf_counter_ns()
    db.execute("SELECT 1").fetchall()
    python_cost.append(time.perf_counter_ns() - began)


def match(prefix):
    return '"' + prefix + '"*'


def p50(statement, keys, arguments):
    # A first pass over other keys reads the file into the system's cache, as the engine's own
    # run before this one did.
    for key in random.sample(warm_keys(keys), min(len(keys), 2000)):
        db.execute(statement, arguments(key)).fetchall()
    latencies = []
    for key in keys:
        began = time.perf_counter_ns()
        db.execute(statement, arguments(key)).fetchall()
        latencies.append(time.perf_counter_ns() - began)
    return sorted(latencies)[len(latencies) // 2] / 1000


email = (f"SELECT {columns} FROM contacts WHERE state IN (?, ?) AND ifnull(email, '') = ? COLLATE NOCASE "
         "ORDER BY updated_at DESC, contacts.row_id DESC LIMIT ?")
print(f"sqlite floor: email lookup p50: {p50(email, emails, lambda key: ('pending', 'synced', key, 2)):.1f} µs")
index_only = email.replace(columns, "row_id", 1)
print(f"sqlite floor: email lookup, the index alone, p50: "
      f"{p50(index_only, emails, lambda key: ('pending', 'synced', key, 2)):.1f} µs")
stored = (f"SELECT {qualified} FROM contacts_fts JOIN contacts ON contacts.row_id = contacts_fts.rowid "
          "WHERE state IN (?, ?) AND contacts_fts MATCH ? ORDER BY contacts_fts.rowid ASC LIMIT ?")
print(f"sqlite floor: fts prefix (sort stored) p50: "
      f"{p50(stored, prefixes, lambda key: ('pending', 'synced', match(key), 21)):.1f} µs")
fts_only = "SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? ORDER BY rowid LIMIT ?"
print(f"sqlite floor: fts prefix, the full-text index alone, p50: "
      f"{p50(fts_only, prefixes, lambda key: (match(key), 21)):.1f} µs")
print(f"sqlite floor: Python's own cost of a statement p50: {sorted(python_cost)[samples // 2] / 1000:.1f} µs")
