"""Known answers for Keyward's Alibaba Cloud V3 (ACS3-HMAC-SHA256) request signature, computed with
the official SDK's own signing code (PyPI alibabacloud-tea-openapi, `Utils.get_authorization`).

Run: python3 acs3_kat.py (with alibabacloud-tea-openapi installed). The unit test
`aliyun::sign::tests::the_signature_is_the_official_sdks` checks Keyward's signer gives the same.
"""
import hashlib

from alibabacloud_tea_openapi.utils import Utils
from darabonba.request import DaraRequest

request = DaraRequest()
request.method = "POST"
request.pathname = "/"
request.query = {
    "RoleArn": "acs:ram::1234567890123456:role/deploy",
    "RoleSessionName": "keyward-prod",
    "DurationSeconds": "3600",
    "Odd": "a b+c*~/é",
}
payload = hashlib.sha256(b"").hexdigest()
request.headers = {
    "host": "sts.cn-hangzhou.aliyuncs.com",
    "x-acs-action": "AssumeRole",
    "x-acs-version": "2015-04-01",
    "x-acs-date": "2026-12-04T01:02:03Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": payload,
}
print(Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload,
                              "LTAI5tKeywardTest0001", "kwTestSecret0123456789abcdefgh"))
