"""A runaway script for the end-to-end tests: asks the agent for one OAuth2 key's token N times
in a loop on one connection, as fast as it can.

  hammer.py SOCKET PROFILE N   prints {"ok": …, "throttled": …, "other": …, "message": the
                               first throttled message, "secs": how long it took}
"""

import json
import socket
import sys
import time

path, profile, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rwb")
line = (json.dumps({"v": 1, "req": {"op": "cred_oauth2", "profile": profile}}) + "\n").encode()
counts = {"ok": 0, "throttled": 0, "other": 0, "message": None}
start = time.monotonic()
for _ in range(n):
    f.write(line)
    f.flush()
    reply = json.loads(f.readline())
    if "ok" in reply:
        counts["ok"] += 1
    elif reply["err"]["code"] == "throttled":
        counts["throttled"] += 1
        counts["message"] = counts["message"] or reply["err"]["message"]
    else:
        counts["other"] += 1
        counts["message"] = counts["message"] or reply["err"]["message"]
counts["secs"] = time.monotonic() - start
print(json.dumps(counts))
