"""A Kubernetes API stub for the end-to-end tests: HTTPS on 127.0.0.1 with the given certificate,
answering `/version`, discovery and the pod list only to `Authorization: Bearer TOKEN` (401 otherwise), as an
API server with a token authenticator does.

  kube_api.py CERT KEY TOKEN   prints {"port": N} once listening; appends each request's
                               status and path to CERT.log
"""

import http.server
import json
import ssl
import sys

cert, key, token = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        ok = self.headers.get("Authorization", "") == f"Bearer {token}"
        path = self.path.split("?")[0]
        if not ok:
            status, body = 401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
        elif path == "/version":
            status, body = 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}
        elif path == "/api":
            status, body = 200, {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        elif path == "/apis":
            status, body = 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        elif path == "/api/v1":
            status, body = 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                 "verbs": ["get", "list"], "shortNames": ["po"]}]}
        elif path == "/api/v1/namespaces/default/pods":
            status, body = 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}
        else:
            status, body = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
        with open(cert + ".log", "a") as f:
            f.write(f"{status} {path}\n")
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
