"""Airbyte's Intercom connector (airbyte-source-intercom 0.8.3 from PyPI) against the simulator,
as a new user would try it: `check`, then a read of its `tags` and `contacts` streams. The
manifest names api.intercom.io, so a copy of the package is made at run time with its
`url_base` pointed at BASE_URL (as in airbyte_pull.py).

Usage: python airbyte_check.py BASE_URL TOKEN   (prints one JSON line; exits 1 on failure)
"""
import json
import shutil
import subprocess
import sys

import source_intercom
from relocated import relocated

base_url, token = sys.argv[1:3]
work, environment = relocated(source_intercom, "manifest.yaml", 'url_base: "https://api.intercom.io/"',
                              f'url_base: "{base_url.rstrip("/")}/"')
config = work / "config.json"
config.write_text(json.dumps({"access_token": token, "start_date": "2000-01-01T00:00:00Z"}))
catalog = work / "catalog.json"
catalog.write_text(json.dumps({"streams": [
    {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
     "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for name in ("tags", "contacts")]}))
connector = [sys.executable, "-c", "import sys; from source_intercom.run import run; sys.argv[0] = 'source-intercom'; run()"]


def run(*arguments):
    done = subprocess.run(connector + list(arguments), capture_output=True, text=True, env=environment)
    messages = []
    for line in done.stdout.splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            pass
    return done.returncode, messages


code, messages = run("check", "--config", str(config))
status = next((m["connectionStatus"] for m in messages if m.get("type") == "CONNECTION_STATUS"), {})
if code != 0 or status.get("status") != "SUCCEEDED":
    sys.exit(f"check failed (exit {code}): {status.get('message', status)}")
code, messages = run("read", "--config", str(config), "--catalog", str(catalog))
errors = [m["trace"]["error"].get("message") for m in messages
          if m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR"]
ids = {"tags": set(), "contacts": set()}
for message in messages:
    if message.get("type") == "RECORD" and message["record"]["stream"] in ids:
        ids[message["record"]["stream"]].add(message["record"]["data"].get("id"))
shutil.rmtree(work, ignore_errors=True)
if code != 0 or errors:
    sys.exit(f"the read failed (exit {code}): {errors[:1]}")
print(json.dumps({"check": status["status"], "tags": len(ids["tags"]), "contacts": len(ids["contacts"])}))
