"""Desktop app figures (a benchmark, not a test), on this machine, under Xvfb:

- cold start to the unlock screen painted (a vault exists, locked): median of 5 starts;
- idle memory with the window open: PSS summed over the app and its WebKit processes;
- closed to the tray: the app's RSS, and that no WebKit process is left.

Run by bench/desktop inside a private keyring session; argv: repo, app binary, keyward binary.
"""

import os
import signal
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


# A locked vault, created with the CLI (its agent stops before the app starts).
init = subprocess.Popen([kw, "--input-fd", "0", "init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"],
                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
init.stdin.write(f"{PASS}\n{PASS}\n")
init.stdin.flush()
secret = next(line.split(": ", 1)[1].strip() for line in init.stdout if line.startswith("Or enter this secret by hand: "))
init.stdin.write(totp(secret, int(time.time())) + "\n")
init.stdin.close()
init.wait()
assert init.returncode == 0, init.stderr.read()
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
