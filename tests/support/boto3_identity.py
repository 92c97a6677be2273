"""Resolves a profile the way every boto3 user does (credential_process from AWS_CONFIG_FILE)
and calls STS GetCallerIdentity. Prints the identity and the access key boto3 was given."""

import json
import sys

import boto3

profile, endpoint = sys.argv[1], sys.argv[2]
session = boto3.session.Session(profile_name=profile, region_name="us-east-1")
creds = session.get_credentials().get_frozen_credentials()
identity = session.client("sts", endpoint_url=endpoint).get_caller_identity()
print(json.dumps({"arn": identity["Arn"], "access_key_id": creds.access_key, "has_token": bool(creds.token)}))
