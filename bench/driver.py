"""Drives the latency and throughput benchmarks inside a private keyring session (see bench/run).

Sets up a throw-away home, a moto STS/IAM on 127.0.0.1, a vault unlocked with a real TOTP code
and one AWS key whose session is already cached; then measures whole-process latency of
`keyward cred aws` beside `secret-tool lookup` of one keychain item in the same run (hyperfine),
every adapter's warm whole-process latency (`cred aws`, `cred kube`, git's and docker's helpers,
`cred aliyun`) beside `secret-tool lookup` and `/bin/true`, agent throughput with 64 concurrent socket clients
(the `throughput` cargo bench), and `keyward exec`'s container endpoint under 16 kept-alive
clients (the `endpoint` cargo bench, run as the exec's child).
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

repo = sys.argv[1]
kw = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(repo, "target"), "release", "keyward")
venv = os.path.join(repo, ".venv", "bin")
home = tempfile.mkdtemp(prefix="kw-bench-")
env = dict(os.environ)
env.update(
    HOME=f"{home}/home",
    XDG_DATA_HOME=f"{home}/data",
    XDG_STATE_HOME=f"{home}/state",
    XDG_CONFIG_HOME=f"{home}/config",
    KEYWARD_RUNTIME_DIR=f"{home}/run/keyward",
    AWS_CONFIG_FILE=f"{home}/aws/config",
    AWS_SHARED_CREDENTIALS_FILE=f"{home}/aws/credentials",
)
for d in ("home", "data", "state", "config", "run", "aws"):
    os.makedirs(f"{home}/{d}", exist_ok=True)
# The throughput run is 64 processes of one program asking for one key as fast as they can: the
# default rate limit cuts that off, as it should a runaway loop. An admin policy lifts it for the
# bench (bench/run builds keyward with the test-only policy path). A policy must be root's file in
# directories no one else can write, so not under /tmp.
lifted = os.geteuid() == 0
if lifted:
    policy_dir = os.path.join(repo, "target", "bench-policy")
    os.makedirs(policy_dir, mode=0o755, exist_ok=True)
    os.chmod(policy_dir, 0o755)
    with open(f"{policy_dir}/policy.toml", "w") as f:
        f.write("[defaults]\nrate_per_minute = 100000000\nrate_burst = 100000000\n")
    os.chmod(f"{policy_dir}/policy.toml", 0o644)
    env["KEYWARD_POLICY"] = f"{policy_dir}/policy.toml"
PASS = "bench-orbit-maple-quartz-lantern"


from totp import totp  # noqa: E402  (bench/totp.py, beside this file)


def run(args, stdin=None):
    r = subprocess.run([kw, *args], env=env, input=stdin, text=True, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"keyward {' '.join(args)} failed: {r.stderr.strip()}")
    return r


s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
moto_env = dict(env, INITIAL_NO_AUTH_ACTION_COUNT="9")
moto = subprocess.Popen(
    [f"{venv}/moto_server", "-H", "127.0.0.1", "-p", str(port)],
    env=moto_env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    keys = json.loads(
        subprocess.run(
            [f"{venv}/python", f"{repo}/tests/support/moto_setup.py", endpoint], capture_output=True, text=True, check=True
        ).stdout
    )

    # The load generators are built before the vault exists: a long build must not outlast the
    # vault's auto-lock between the unlock and the grants. With the features keyward was built
    # with (bench/run), so building them does not put another keyward in its place.
    built = subprocess.run(
        ["cargo", "bench", "-q", "-p", "keyward-agent", "--bench", "throughput", "--no-run",
         "--features", "keyward-core/test-policy-path", "--message-format=json"],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    throughput = [m["executable"] for m in map(json.loads, built.stdout.splitlines())
                  if m.get("executable")][-1]
    built = subprocess.run(
        ["cargo", "bench", "-q", "-p", "keyward-cli", "--bench", "endpoint", "--no-run",
         "--features", "keyward-core/test-policy-path", "--message-format=json"],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    endpoint_load = [m["executable"] for m in map(json.loads, built.stdout.splitlines())
                     if m.get("executable")][-1]
    init = subprocess.Popen(
        [kw, "--input-fd", "0", "init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    init.stdin.write(f"{PASS}\n{PASS}\n")
    init.stdin.flush()
    secret = None
    for line in init.stdout:
        if line.startswith("Or enter this secret by hand: "):
            secret = line.split(": ", 1)[1].strip()
            break
    now = int(time.time())
    init.stdin.write(totp(secret, now) + "\n")
    init.stdin.close()
    init.wait()
    assert init.returncode == 0, init.stderr.read()
    run(["--input-fd", "0", "unlock"], f"{PASS}\n{totp(secret, now + 30)}\n")
    run(
        ["--input-fd", "0", "add", "aws", "bench", "--access-key-id", keys["access_key_id"],
         "--role-arn", keys["role_arn"], "--sts-endpoint", endpoint],
        keys["secret_access_key"] + "\n",
    )
    # Approve the programs that will ask (per-client approval): this driver, hyperfine, and the
    # throughput client, whose path cargo reports.
    # A standing grant needs a current code; each code is accepted once, and the agent takes one
    # step of skew ahead, so wait for the next step when the usable ones are spent.
    used = [now // 30, now // 30 + 1]

    def fresh_code():
        while True:
            step = int(time.time()) // 30
            for cand in (step, step + 1):
                if cand > max(used):
                    used.append(cand)
                    return totp(secret, cand * 30)
            time.sleep(1)

    for exe, script in [(sys.executable, __file__), (shutil.which("hyperfine"), None), (throughput, None),
                        (endpoint_load, None)]:
        args = ["--input-fd", "0", "grants", "allow", "--exe", os.path.realpath(exe), "--profile", "bench"]
        if script:
            args += ["--script", os.path.realpath(script)]
        run(args, fresh_code() + "\n")
    run(["cred", "aws", "--profile", "bench"])  # warm the cache

    # One keychain item of the same vault, looked up by secret-tool (a C program, libsecret).
    vault_id = sqlite3.connect(f"{home}/data/keyward/catalog.sqlite").execute("SELECT vault_id FROM vault").fetchone()[0]
    lookup = f"secret-tool lookup service keyward username {vault_id}/device-secret"

    out = f"{home}/hyperfine.json"
    subprocess.run(
        ["hyperfine", "-N", "--warmup", "20", "--runs", "300", "--export-json", out,
         f"{kw} cred aws --profile bench", lookup],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    res = json.load(open(out))["results"]

    def stats(r):
        t = sorted(r["times"])
        return r["median"] * 1e3, t[int(len(t) * 0.95)] * 1e3, len(t)

    kw_med, kw_p95, n = stats(res[0])
    st_med, st_p95, _ = stats(res[1])
    print(f"keyward cred aws (warm): median {kw_med:.2f} ms, p95 {kw_p95:.2f} ms over {n} runs (target: median <= 5 ms)")
    print(f"secret-tool lookup:      median {st_med:.2f} ms, p95 {st_p95:.2f} ms over {n} runs")
    print(f"ratio keyward/secret-tool (median): {kw_med / st_med:.2f} (target <= 0.5)")

    # Every adapter's whole-process latency, warm, beside secret-tool and the process floor, in
    # one run: each started by this driver exactly as its tool starts it (its input on stdin),
    # the same way for all, so the floor is measured the same way too.
    bindir = f"{home}/bin"
    os.makedirs(bindir, exist_ok=True)
    for helper in ("git-credential-keyward", "docker-credential-keyward"):
        os.symlink(os.path.realpath(kw), f"{bindir}/{helper}")
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    env["DOCKER_CONFIG"] = f"{home}/docker"
    # One key per adapter: 320 runs of one program for one key in seconds is over the default
    # rate limit's burst (600), as a loop of that size should be.
    for key in ("kube", "git", "docker"):
        run(["--input-fd", "0", "add", "static", key], "ghp_benchLeaseValue0123456789\n")
        run(["--input-fd", "0", "grants", "allow", "--exe", os.path.realpath(sys.executable), "--script",
             os.path.realpath(__file__), "--profile", key], fresh_code() + "\n")
    run(["--input-fd", "0", "edit", "kube", "--allow-lease", "env"], fresh_code() + "\n")
    run(["--input-fd", "0", "setup", "git", "git.bench.example", "--key", "git"], fresh_code() + "\n")
    run(["--input-fd", "0", "setup", "docker", "registry.bench.example", "--key", "docker", "--username", "bench"],
        fresh_code() + "\n")

    # Alibaba Cloud: the tests' STS stand-in (it checks each signature), one key with a role.
    ali_ak, ali_secret = "LTAI5tKwBenchAliyun001", "kwBenchAliyunSecret0123456789a"
    aliyun_sts = subprocess.Popen(
        [f"{venv}/python", f"{repo}/tests/support/aliyun_sts.py", ali_ak, ali_secret, f"{home}/aliyun-sts.log"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    ali_port = json.loads(aliyun_sts.stdout.readline())["port"]
    run(["--input-fd", "0", "add", "aliyun", "ali", "--access-key-id", ali_ak, "--role-arn",
         "acs:ram::1234567890123456:role/bench", "--sts-endpoint", f"http://127.0.0.1:{ali_port}"], ali_secret + "\n")
    run(["--input-fd", "0", "grants", "allow", "--exe", os.path.realpath(sys.executable), "--script",
         os.path.realpath(__file__), "--profile", "ali"], fresh_code() + "\n")

    def measure(argv, stdin=b"", runs=300, warmup=20):
        times = []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            r = subprocess.run(argv, env=env, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t = time.perf_counter() - t0
            if r.returncode != 0:
                raise SystemExit(f"{argv[0]} {' '.join(argv[1:])} failed: {r.stderr.decode(errors='replace')}")
            if i >= warmup:
                times.append(t * 1e3)
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.95)], len(times)

    adapters = [
        ("cred aws", [kw, "cred", "aws", "--profile", "bench"], b""),
        ("cred kube (ExecCredential)", [kw, "cred", "kube", "--profile", "kube"], b""),
        ("git get", [f"{bindir}/git-credential-keyward", "get"], b"protocol=https\nhost=git.bench.example\n\n"),
        ("docker get", [f"{bindir}/docker-credential-keyward", "get"], b"registry.bench.example"),
        ("cred aliyun (External)", [kw, "cred", "aliyun", "--profile", "ali"], b""),
    ]
    floor = measure(["/bin/true"])
    st = measure(lookup.split())
    print()
    print(f"{'secret-tool lookup':28} median {st[0]:6.2f} ms, p95 {st[1]:6.2f} ms over {st[2]} runs")
    print(f"{'/bin/true (process floor)':28} median {floor[0]:6.2f} ms, p95 {floor[1]:6.2f} ms over {floor[2]} runs")
    for name, argv, stdin in adapters:
        med, p95, n = measure(argv, stdin)
        print(f"{name:28} median {med:6.2f} ms, p95 {p95:6.2f} ms over {n} runs: "
              f"{med / st[0]:.2f}x secret-tool (target <= 0.3), {med / floor[0]:.1f}x the floor (target <= 3)")
    aliyun_sts.terminate()

    # cargo needs the real HOME (rustup); the agent is reached through the socket path alone.
    bench_env = dict(os.environ, KEYWARD_BENCH_SOCKET=f"{home}/run/keyward/agent.sock", KEYWARD_BENCH_PROFILE="bench")
    if lifted:
        subprocess.run([throughput, "--bench"], env=bench_env, cwd=repo, check=True)
    else:
        print("agent throughput: not run (the default rate limit cuts off 64 clients of one program; only a root-owned policy lifts it: run bench/run as root)")

    # keyward exec's container endpoint, with its child the load generator.
    subprocess.run([kw, "exec", "aws:bench", "--", endpoint_load, "--bench"], env=env, check=True)
finally:
    subprocess.run([kw, "agent", "stop"], env=env, capture_output=True)
    moto.terminate()
    moto.wait()
