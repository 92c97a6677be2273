"""An Alibaba Cloud STS stand-in for the end-to-end tests, on 127.0.0.1 over HTTP. There is no STS
emulator; this one checks what the real service checks, with the official SDK's own signing code
(PyPI alibabacloud-openapi-util, `Client.get_authorization`): the V3 signature (ACS3-HMAC-SHA256)
over the signed headers, the body's hash, the date (15 minutes) and a nonce used once.

  aliyun_sts.py ACCESS_KEY_ID SECRET LOG   prints {"port": N} once listening; appends one JSON
                                           line per request to LOG

AssumeRole (signed with the long-lived AccessKey) issues an STS token for an hour (DurationSeconds
honoured); GetCallerIdentity answers a request signed with the AccessKey (the RAM user) or with a token it
issued, carrying that token's security token (the role). Anything else is refused as STS refuses it.
"""

import calendar
import hashlib
import http.server
import json
import secrets
import sys
import time
import types
import urllib.parse

from alibabacloud_openapi_util.client import Client as Util

access_key_id, secret, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
tokens = {}  # STS.… id -> (secret, security token, role ARN)
nonces = set()


def log(entry):
    with open(log_path, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status, code, message, action):
        log({"action": action, "ok": False, "code": code})
        self.answer(status, {"RequestId": secrets.token_hex(8), "Code": code, "Message": message})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            query.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = self.headers.get("x-acs-action", "")
        auth = self.headers.get("Authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            fields = dict(p.split("=", 1) for p in rest.split(","))
            key_id, signed = fields["Credential"], fields["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            return self.refuse(400, "MissingAuthorization", "no V3 Authorization header", action)
        if algorithm != "ACS3-HMAC-SHA256":
            return self.refuse(400, "InvalidSignatureMethod", algorithm, action)
        for needed in ("host", "x-acs-action", "x-acs-version", "x-acs-date",
                       "x-acs-signature-nonce", "x-acs-content-sha256"):
            if needed not in signed:
                return self.refuse(400, "IncompleteSignature", f"{needed} is not signed", action)
        if self.headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
            return self.refuse(400, "ContentSHA256NotMatched", "the body's hash differs", action)
        try:
            when = calendar.timegm(time.strptime(self.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ"))
        except (KeyError, ValueError):
            return self.refuse(400, "InvalidTimeStamp.Format", "x-acs-date", action)
        if abs(time.time() - when) > 900:
            return self.refuse(400, "InvalidTimeStamp.Expired", "x-acs-date is off", action)
        nonce = self.headers["x-acs-signature-nonce"]
        if nonce in nonces:
            return self.refuse(400, "SignatureNonceUsed", "the nonce was used", action)
        if key_id == access_key_id:
            key_secret, token = secret, None
        elif key_id in tokens:
            key_secret, token, _ = tokens[key_id]
            if self.headers.get("x-acs-security-token") != token:
                return self.refuse(400, "InvalidSecurityToken.Mismatch", "wrong security token", action)
        else:
            return self.refuse(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", action)
        request = types.SimpleNamespace(
            method=self.command, pathname=url.path or "/", query=query,
            headers={h: self.headers.get(h, "") for h in signed})
        expected = Util.get_authorization(request, "ACS3-HMAC-SHA256",
                                          self.headers["x-acs-content-sha256"], key_id, key_secret)
        if not secrets.compare_digest(expected, auth):
            return self.refuse(400, "SignatureDoesNotMatch",
                               "The request signature does not conform to Aliyun standards.", action)
        nonces.add(nonce)
        if action == "AssumeRole" and token is None:
            role = query.get("RoleArn", "")
            duration = int(query.get("DurationSeconds", "3600"))
            if not role.startswith("acs:ram::") or not 900 <= duration <= 43200:
                return self.refuse(400, "InvalidParameter", "RoleArn or DurationSeconds", action)
            sts_id = "STS." + secrets.token_hex(12)
            sts_secret, sts_token = secrets.token_hex(20), "CAIS" + secrets.token_hex(60)
            tokens[sts_id] = (sts_secret, sts_token, role)
            expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + duration))
            log({"action": action, "ok": True, "role": role, "session": query.get("RoleSessionName"),
                 "access_key_id": sts_id, "secret": sts_secret, "token": sts_token,
                 "duration": duration})
            account, name = role[len("acs:ram::"):].split(":role/", 1)
            return self.answer(200, {
                "RequestId": secrets.token_hex(8),
                "AssumedRoleUser": {"Arn": f"acs:ram::{account}:assumed-role/{name}/{query.get('RoleSessionName')}",
                                    "AssumedRoleId": "3" + secrets.token_hex(8)},
                "Credentials": {"AccessKeyId": sts_id, "AccessKeySecret": sts_secret,
                                "SecurityToken": sts_token, "Expiration": expiration}})
        if action == "GetCallerIdentity":
            log({"action": action, "ok": True, "access_key_id": key_id})
            if token is None:
                return self.answer(200, {"RequestId": secrets.token_hex(8), "IdentityType": "RAMUser",
                                         "Arn": "acs:ram::1234567890123456:user/keyward-test",
                                         "AccountId": "1234567890123456", "UserId": "2" + key_id[4:12]})
            role = tokens[key_id][2]
            return self.answer(200, {"RequestId": secrets.token_hex(8), "IdentityType": "AssumedRoleUser",
                                     "Arn": role, "AccountId": role.split(":")[3], "UserId": "3" + key_id[4:12]})
        return self.refuse(400, "InvalidAction.NotFound", f"{action} with this key", action)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
