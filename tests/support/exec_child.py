"""What `keyward exec` runs in the end-to-end tests, as a real SDK user would be run.

  refresh ENDPOINT ROUNDS PAUSE  boto3 from the container endpoint, GetCallerIdentity each round
                                 (moto checks the signature), PAUSE seconds apart; prints the
                                 access keys used, the ARNs and the environment's names
  publish FILE                   writes this exec's endpoint URL and token to FILE, then waits
                                 for FILE.done (another exec's child attacks with them)
  hostile OTHER_FILE             sends hostile requests to its own endpoint and the other's;
                                 prints the status of each
  curl API VAR                   the real curl calls API with the token in VAR; prints its answer
                                 and VAR_EXPIRES_AT
  sleep SECONDS                  waits
  environ                        prints the whole environment as JSON
  readfile VAR                   reads the file VAR names twice (as a tool that reads it again
                                 would); prints the path, what it read, whether a write is
                                 refused, the environment, and its own open descriptors
"""

import json
import os
import socket
import sys
import time
import urllib.parse


def request(url, headers, raw=None, slow=False):
    """One request over a fresh connection; the status, or None when the endpoint closed it."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    try:
        if raw is None:
            lines = [f"GET {u.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers] + ["Connection: close", "", ""]
            raw = "\r\n".join(lines).encode()
        if slow:
            s.sendall(raw[:20])
            time.sleep(4)
        else:
            s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data:
            return None, ""
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body.decode(errors="replace")
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return None, ""
    finally:
        s.close()


def host_of(url):
    return urllib.parse.urlsplit(url).netloc


def main():
    mode = sys.argv[1]
    url = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    token = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
    if mode == "refresh":
        import boto3

        endpoint, rounds, pause = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        session = boto3.session.Session(region_name="us-east-1")
        sts = session.client("sts", endpoint_url=endpoint)
        keys, arns = [], []
        for i in range(rounds):
            if i:
                time.sleep(pause)
            arns.append(sts.get_caller_identity()["Arn"])
            keys.append(session.get_credentials().get_frozen_credentials().access_key)
        print(json.dumps({"keys": keys, "arns": arns, "env": sorted(os.environ)}))
    elif mode == "publish":
        path = sys.argv[2]
        with open(path + ".tmp", "w") as f:
            json.dump({"url": url, "token": token}, f)
        os.rename(path + ".tmp", path)
        deadline = time.time() + 120
        while not os.path.exists(path + ".done") and time.time() < deadline:
            time.sleep(0.1)
    elif mode == "hostile":
        with open(sys.argv[2]) as f:
            other = json.load(f)
        own_host, other_host = host_of(url), host_of(other["url"])
        out = {}
        out["no_token"] = request(url, [("Host", own_host)])[0]
        out["wrong_token"] = request(url, [("Host", own_host), ("Authorization", token[:-1] + ("0" if token[-1] != "0" else "1"))])[0]
        out["other_execs_token"] = request(url, [("Host", own_host), ("Authorization", other["token"])])[0]
        out["own_token_at_other"] = request(other["url"], [("Host", other_host), ("Authorization", token)])[0]
        out["wrong_host"] = request(url, [("Host", "attacker.example:" + own_host.split(":")[1]), ("Authorization", token)])[0]
        out["localhost_host"] = request(url, [("Host", "localhost:" + own_host.split(":")[1]), ("Authorization", token)])[0]
        out["origin"] = request(url, [("Host", own_host), ("Authorization", token), ("Origin", "http://attacker.example")])[0]
        out["oversized"] = request(url, [("Host", own_host), ("Authorization", token), ("X-Pad", "a" * 20000)])[0]
        out["slow"] = request(url, [], raw=f"GET {urllib.parse.urlsplit(url).path} HTTP/1.1\r\nHost: {own_host}\r\n".encode(), slow=True)[0]
        out["post"] = request(url, [], raw=f"POST {urllib.parse.urlsplit(url).path} HTTP/1.1\r\nHost: {own_host}\r\nAuthorization: {token}\r\nContent-Length: 2\r\n\r\n{{}}".encode())[0]
        status, body = request(url, [("Host", own_host), ("Authorization", token)])
        out["own"] = status
        out["own_key"] = json.loads(body).get("AccessKeyId") if status == 200 else None
        status, body = request(other["url"], [("Host", other_host), ("Authorization", other["token"])])
        out["other_with_its_token"] = status
        print(json.dumps(out))
    elif mode == "curl":
        import subprocess

        api, var = sys.argv[2], sys.argv[3]
        who = subprocess.run(
            ["curl", "-sS", "-f", "-H", f"Authorization: Bearer {os.environ[var]}", api],
            check=True, capture_output=True, text=True,
        ).stdout
        print(json.dumps({"whoami": json.loads(who), "expires_at": os.environ.get(var + "_EXPIRES_AT")}))
    elif mode == "sleep":
        time.sleep(float(sys.argv[2]))
    elif mode == "environ":
        print(json.dumps(dict(os.environ)))
    elif mode == "readfile":
        path = os.environ[sys.argv[2]]
        reads = [open(path).read() for _ in range(2)]
        try:
            with open(path, "w") as f:
                f.write("x")
            writable = True
        except OSError:
            writable = False
        print(json.dumps({"path": path, "reads": reads, "writable": writable,
                          "environ": dict(os.environ), "fds": sorted(os.listdir("/proc/self/fd"))}))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
