"""Desktop app figures (a benchmark, not a test), on this machine, under Xvfb:

- cold start to the unlock screen painted (a vault exists, locked): median of 5 starts;
- idle memory with the window open: PSS summed over the app and its WebKit processes;
- closed to the tray: the app's RSS, and that no WebKit process is left;
- Keys screen with 10,000 keys: keystroke in the search box to the next painted frame, driven
  through WebDriver (tauri-driver) in the real app.

Run by bench/desktop inside a private keyring session; argv: repo, app binary, keyward binary.
"""

import http.client
import json
import os
import re
import signal
import socket
import urllib.error
import urllib.request
import statistics
import subprocess
import sys
import tempfile
import time

from totp import totp

repo, app, kw = sys.argv[1:4]
home = tempfile.mkdtemp(prefix="kw-desktop-bench-")
env = dict(os.environ)
env.update(
    HOME=f"{home}/home", XDG_STATE_HOME=f"{home}/state", XDG_CONFIG_HOME=f"{home}/config",
    KEYWARD_DATA_DIR=f"{home}/data",
)
for d in ("home", "state", "config", "data"):
    os.makedirs(f"{home}/{d}", exist_ok=True)
PASS = "bench-orbit-maple-quartz-lantern"


def children(pid):
    """Every descendant of pid (the WebKit web and network processes)."""
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def field(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])  # kB
    return 0


def window():
    out = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "^Keyward$"],
                         env=env, capture_output=True, text=True, timeout=30).stdout.split()
    return out[0]


def fresh_display():
    """A new Xvfb for each start: Xvfb keeps the last frame on the root window, so a reused
    display would look painted before the app has drawn anything."""
    for n in range(130, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            x = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
                time.sleep(0.05)
            env["DISPLAY"] = f":{n}"
            return x
    raise SystemExit("no free X display")


def colours():
    """Distinct colours on screen: a blank web view gives a handful, a painted form hundreds.
    (The root window, because capturing a WebKit window by id under Xvfb gives a blank image.)"""
    shot = subprocess.run(["/usr/bin/import", "-window", "root", "png:-"], env=env, capture_output=True).stdout
    n = subprocess.run(["/usr/bin/convert", "png:-", "-format", "%k", "info:"], input=shot, capture_output=True).stdout
    return int(n or b"0")


# A locked vault, created with the CLI (its agent stops before the app starts). The file keystore
# keeps adding 10,000 keys to seconds (one Secret Service item each takes minutes); none of the
# figures here touches the keystore.
init = subprocess.Popen([kw, "--input-fd", "0", "init", "--keystore", "file", "--kdf-memory-mib", "8", "--kdf-iterations", "1"],
                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
init.stdin.write(f"{PASS}\n{PASS}\n")
init.stdin.flush()
secret = next(line.split(": ", 1)[1].strip() for line in init.stdout if line.startswith("Or enter this secret by hand: "))
init.stdin.write(totp(secret, int(time.time())) + "\n")
init.stdin.close()
recovery = [m.group(1) for line in init.stdout if (m := re.match(r"\s*\d+\. (\S+-\S+)$", line))]
init.wait()
assert init.returncode == 0, init.stderr.read()
assert recovery, "no recovery codes printed"
subprocess.run([kw, "agent", "stop"], env=env, check=True, capture_output=True)

starts, mapped = [], []
pss_open = rss_tray = webkit_left = None
for run in range(5):
    xvfb = fresh_display()
    assert colours() < 100, "a fresh display starts blank"
    t0 = time.monotonic()
    proc = subprocess.Popen([app], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    win = window()
    mapped.append(time.monotonic() - t0)
    while colours() < 100:
        assert time.monotonic() - t0 < 30, "the unlock screen never painted"
    starts.append(time.monotonic() - t0)
    if run == 0:
        time.sleep(5)  # idle
        pids = [proc.pid] + children(proc.pid)
        pss_open = sum(field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids) / 1024
        subprocess.run(["xdotool", "windowfocus", "--sync", win], env=env, check=True)
        subprocess.run(["xdotool", "key", "ctrl+w"], env=env, check=True)
        time.sleep(3)
        webkit_left = len(children(proc.pid))
        rss_tray = field(f"/proc/{proc.pid}/status", "VmRSS") / 1024
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    xvfb.terminate()
    xvfb.wait()

print(f"cold start to unlock screen painted: median {statistics.median(starts):.2f} s "
      f"(min {min(starts):.2f}, max {max(starts):.2f}; window mapped after {statistics.median(mapped):.2f} s) "
      "(target <= 1.5 s)")
print(f"idle, window open: PSS {pss_open:.0f} MiB over the app and its WebKit processes (target <= 300 MiB)")
print(f"closed to the tray: RSS {rss_tray:.0f} MiB, WebKit processes left: {webkit_left} (target <= 40 MiB)")


# --- 10,000 keys: filter keystroke to paint ---------------------------------------------------
def wd(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:4444{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"{}").get("value")


subprocess.run([kw, "--input-fd", "0", "unlock", "--recovery"], env=env, check=True, capture_output=True,
               input=f"{PASS}\n{recovery.pop()}\n", text=True)
runtime = os.path.join(env.get("KEYWARD_RUNTIME_DIR") or os.path.join(env["XDG_RUNTIME_DIR"], "keyward"), "agent.sock")
t_add = time.monotonic()
with socket.socket(socket.AF_UNIX) as s:
    s.connect(runtime)
    f = s.makefile("rw")
    for i in range(10_000):
        tag = ["ci", "prod", "data", "web"][i % 4]
        f.write(json.dumps({"v": 1, "req": {"op": "add_static", "name": f"key-{i:05d}",
                                            "meta": {"tags": [tag], "owner": "platform"}, "value": "x" * 20}}) + "\n")
        f.flush()
        assert "ok" in json.loads(f.readline()), "add failed"
print(f"(added 10,000 keys in {time.monotonic() - t_add:.0f} s)")
subprocess.run([kw, "agent", "stop"], env=env, check=True, capture_output=True)

xvfb = fresh_display()
driver = subprocess.Popen([os.path.expanduser("~/.cargo/bin/tauri-driver")], env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", 4444), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    sid = wd("POST", "/session", {"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}})["sessionId"]

    def el(css, timeout=60):
        end = time.monotonic() + timeout
        while True:
            try:
                v = wd("POST", f"/session/{sid}/element", {"using": "css selector", "value": css})
                return next(iter(v.values()))
            except urllib.error.HTTPError:
                assert time.monotonic() < end, f"{css} never appeared"
                time.sleep(0.2)

    wd("POST", f"/session/{sid}/element/{el('[data-testid=passphrase]')}/value", {"text": PASS})
    wd("POST", f"/session/{sid}/element/{el('[data-testid=toggle-recovery]')}/click", {})
    wd("POST", f"/session/{sid}/element/{el('[data-testid=code]')}/value", {"text": recovery.pop()})
    wd("POST", f"/session/{sid}/element/{el('[data-testid=unlock-submit]')}/click", {})
    el("[data-testid=key-count]")
    script = """
        const [text, done] = arguments;
        const input = document.querySelector('[data-testid=key-search]');
        const t0 = performance.now();
        input.value = text;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        requestAnimationFrame(() => requestAnimationFrame(() => done([performance.now() - t0,
            document.querySelector('[data-testid=key-count]').textContent])));
    """
    query = "key-0042"
    times = []
    for _ in range(3):
        for n in list(range(1, len(query) + 1)) + list(range(len(query) - 1, -1, -1)):
            ms, count = wd("POST", f"/session/{sid}/execute/async", {"script": script, "args": [query[:n]]})
            times.append(ms)
    assert "10000 keys" in count, count
    wd("DELETE", f"/session/{sid}")
    times.sort()
    print(f"keys screen, 10,000 keys: keystroke to painted frame median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(len(times) * 0.95)]:.1f} ms, max {times[-1]:.1f} ms over {len(times)} keystrokes "
          "(target <= 50 ms)")
except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
    # Seen on 2026-11-22: the driver dropped the connection at the first execute/async with
    # 10,000 keys loaded; say so rather than print a figure.
    print(f"keys screen, 10,000 keys: not measured ({type(e).__name__}: {e})")
finally:
    os.killpg(driver.pid, signal.SIGTERM)
    xvfb.terminate()
