"""The peer for scripts/bench-sync: a full pull done the way a user of Intercom's official
Python SDK would do it: the SDK's pager over GET /contacts (150 a page), each contact written
into sqlite3 with its indexed fields and its JSON body, one commit per page.

Usage: python intercom_sdk_pull.py BASE_URL TOKEN DB_PATH   (prints one JSON line)
"""
import json
import sqlite3
import sys
import time

from intercom import Intercom

base_url, token, path = sys.argv[1:4]
client = Intercom(token=token, base_url=base_url)
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = NORMAL")
db.execute(
    "CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, external_id TEXT, role TEXT, email TEXT,"
    " phone TEXT, name TEXT, created_at INTEGER, updated_at INTEGER, body TEXT NOT NULL)"
)
db.execute("CREATE INDEX IF NOT EXISTS contacts_by_email ON contacts(email COLLATE NOCASE)")
started = time.monotonic()
count = 0
batch = []


def flush():
    db.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    db.commit()
    batch.clear()


for contact in client.contacts.list(per_page=150):
    batch.append(
        (contact.id, contact.external_id, contact.role, contact.email, contact.phone, contact.name,
         contact.created_at, contact.updated_at, contact.model_dump_json(by_alias=True, exclude_none=True))
    )
    count += 1
    if len(batch) == 150:
        flush()
flush()
print(json.dumps({"contacts": count, "seconds": time.monotonic() - started}))
