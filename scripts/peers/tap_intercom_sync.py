"""Singer's tap-intercom (2.2.5 from PyPI) against the simulator: discovery, then a sync of its
`contacts` stream, counting the records it writes. The tap names https://api.intercom.io in its
client, so a copy of the package is made at run time with that base URL pointed at BASE_URL,
and run with the copy first on the path.

Usage: python tap_intercom_sync.py BASE_URL TOKEN   (prints one JSON line; exits 1 on failure)
"""
import json
import shutil
import subprocess
import sys
import time

import tap_intercom
from relocated import relocated

base_url, token = sys.argv[1:3]
work, environment = relocated(tap_intercom, "client.py", "self.base_url = 'https://api.intercom.io'",
                              f"self.base_url = '{base_url.rstrip('/')}'")
config = work / "config.json"
config.write_text(json.dumps({"access_token": token, "start_date": "2000-01-01T00:00:00Z", "user_agent": "fidelity"}))
tap = [sys.executable, "-c", "import sys; from tap_intercom import main; sys.argv[0] = 'tap-intercom'; main()"]
started = time.monotonic()
discovered = subprocess.run(tap + ["--config", str(config), "--discover"], capture_output=True, text=True,
                            env=environment)
if discovered.returncode != 0:
    sys.exit(f"discovery exited {discovered.returncode}: {discovered.stderr.strip().splitlines()[-1:]}")
catalog = json.loads(discovered.stdout)
for stream in catalog["streams"]:
    for entry in stream["metadata"]:
        if entry["breadcrumb"] == [] and stream["tap_stream_id"] == "contacts":
            entry["metadata"]["selected"] = True
(work / "catalog.json").write_text(json.dumps(catalog))
synced = subprocess.run(tap + ["--config", str(config), "--catalog", str(work / "catalog.json")],
                        capture_output=True, text=True, env=environment)
seconds = time.monotonic() - started
ids = set()
records = 0
for line in synced.stdout.splitlines():
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    if message.get("type") == "RECORD" and message.get("stream") == "contacts":
        records += 1
        ids.add(message["record"].get("id"))
shutil.rmtree(work, ignore_errors=True)
if synced.returncode != 0:
    sys.exit(f"the sync exited {synced.returncode}: {synced.stderr.strip().splitlines()[-3:]}")
print(json.dumps({"streams": len(catalog["streams"]), "contacts": len(ids), "records": records, "seconds": seconds}))
