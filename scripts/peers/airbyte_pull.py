"""A peer for scripts/bench-sync: Airbyte's own Intercom connector (airbyte-source-intercom
from PyPI) reading its `contacts` stream in full, as an Airbyte sync would, against the
simulator. The connector's manifest names api.intercom.io, so a copy of the package is made at
run time with its `url_base` pointed at BASE_URL, and run with that copy first on the path.
Records are counted as they come (the connector writes them to stdout); nothing is stored.

Usage: python airbyte_pull.py BASE_URL TOKEN   (prints one JSON line)
"""
import json
import shutil
import subprocess
import sys
import time

import source_intercom
from relocated import relocated

base_url, token = sys.argv[1:3]
work, environment = relocated(source_intercom, "manifest.yaml", 'url_base: "https://api.intercom.io/"',
                              f'url_base: "{base_url.rstrip("/")}/"')
config = work / "config.json"
config.write_text(json.dumps({"access_token": token, "start_date": "2000-01-01T00:00:00Z"}))
catalog = work / "catalog.json"
catalog.write_text(json.dumps({"streams": [{
    "stream": {"name": "contacts", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
    "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}))
started = time.monotonic()
process = subprocess.Popen(
    [sys.executable, "-c", "import sys; from source_intercom.run import run; sys.argv[0] = 'source-intercom'; run()",
     "read", "--config", str(config), "--catalog", str(catalog)],
    stdout=subprocess.PIPE, env=environment, text=True)
records = 0
ids = set()
for line in process.stdout:
    if '"type":"RECORD"' in line.replace(" ", ""):
        records += 1
        message = json.loads(line)
        ids.add(message["record"]["data"].get("id"))
process.wait()
seconds = time.monotonic() - started
shutil.rmtree(work, ignore_errors=True)
if process.returncode != 0:
    sys.exit(f"the connector exited {process.returncode}")
print(json.dumps({"contacts": len(ids), "records": records, "seconds": seconds}))
