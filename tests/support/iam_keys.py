"""Looks at (or adds to) an IAM user's access keys as an administrator would, with boto3 and the
auditor's key from the environment, so a test checks IAM from outside Keyward.

Usage: iam_keys.py ENDPOINT list USER  -> [{"id": ..., "status": "Active"|"Inactive"}, ...]
       iam_keys.py ENDPOINT create USER -> {"id": ...}
       iam_keys.py ENDPOINT last-used KEY_ID -> {"service": ..., "at": ISO time or null}
"""

import json
import sys

import boto3

endpoint, command, user = sys.argv[1:4]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
if command == "list":
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    print(json.dumps([{"id": k["AccessKeyId"], "status": k["Status"]} for k in keys]))
elif command == "create":
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(json.dumps({"id": key["AccessKeyId"]}))
elif command == "last-used":
    used = iam.get_access_key_last_used(AccessKeyId=user)["AccessKeyLastUsed"]
    at = used.get("LastUsedDate")
    print(json.dumps({"service": used["ServiceName"], "at": at.isoformat() if at else None}))
else:
    sys.exit(f"unknown command {command}")
