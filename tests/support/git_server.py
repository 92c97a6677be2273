"""A git smart-HTTP server for the end-to-end tests: the real `git http-backend` behind a small
HTTP server on 127.0.0.1 that requires Basic authentication whose password is TOKEN (any user
name), as a forge does for a personal access token.

  git_server.py ROOT TOKEN   prints {"port": N} once listening; serves repositories under ROOT;
                             appends each authenticated request's user and method to ROOT/log
"""

import base64
import http.server
import json
import os
import subprocess
import sys

root, token = sys.argv[1], sys.argv[2]
backend = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
backend = os.path.join(backend, "git-http-backend")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if password == token else None

    def handle_any(self):
        user = self.authorized()
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="keyward-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(os.path.join(root, "log"), "a") as f:
            f.write(f"{user} {self.command} {self.path}\n")
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = dict(
            os.environ,
            GIT_PROJECT_ROOT=root,
            GIT_HTTP_EXPORT_ALL="1",
            REMOTE_USER=user,
            REQUEST_METHOD=self.command,
            PATH_INFO=path,
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            GATEWAY_INTERFACE="CGI/1.1",
        )
        out = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

    do_GET = handle_any
    do_POST = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
