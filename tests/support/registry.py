"""A container registry stub for the end-to-end tests: HTTPS on 127.0.0.1 with the given
certificate, speaking the registry v2 token handshake as Docker Hub and others do — `/v2/`
answers 401 with `WWW-Authenticate: Bearer realm=…/token`, `/token` hands a bearer token only
for HTTP Basic USER:PASSWORD, and the API (`/v2/`, one image's manifest and config) answers only that bearer token.

  registry.py CERT KEY USER PASSWORD   prints {"port": N} once listening; appends each
                                       request's status, path and the user it authenticated
                                       (or "-") to CERT.log
"""

import base64
import http.server
import json
import secrets
import ssl
import sys

cert, key, user, password = sys.argv[1:5]
bearer = secrets.token_hex(16)
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
               "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
    "layers": [],
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, who="-", headers=()):
        path = self.path.split("?")[0]
        with open(cert + ".log", "a") as f:
            f.write(f"{status} {path} {who}\n")
        data = json.dumps(body).encode()
        self.send_response(status)
        ctype = body.get("mediaType", "application/json") if isinstance(body, dict) else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        auth = self.headers.get("Authorization", "")
        if path == "/token":
            got = ""
            if auth.startswith("Basic "):
                try:
                    got = base64.b64decode(auth[6:]).decode()
                except Exception:
                    got = ""
            if got == f"{user}:{password}":
                return self.reply(200, {"token": bearer, "access_token": bearer, "expires_in": 300}, user)
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
        if auth != f"Bearer {bearer}":
            realm = f'Bearer realm="https://127.0.0.1:{self.server.server_address[1]}/token",service="stub"'
            if path != "/v2/":
                realm += ',scope="repository:app:pull"'
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                              headers=[("WWW-Authenticate", realm)])
        if path == "/v2/":
            return self.reply(200, {}, user)
        if path == "/v2/app/manifests/latest":
            return self.reply(200, manifest, user)
        if path == "/v2/app/blobs/" + manifest["config"]["digest"]:
            return self.reply(200, {}, user)
        return self.reply(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "not here"}]}, user)

    do_HEAD = do_GET


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
