"""Creates what the end-to-end tests need in a fresh moto server, with the real boto3 client.

Runs inside moto's INITIAL_NO_AUTH_ACTION_COUNT window: every request after these is
signature-checked and policy-checked, so later calls prove the stored key really signed them.
Prints one JSON object: the IAM user's long-lived key, a role it may assume, and the key of an
"auditor" user through which a test looks at IAM as an administrator would (never through
Keyward).

It makes nine IAM calls: whoever starts moto sets INITIAL_NO_AUTH_ACTION_COUNT=9 to match
(tests/e2e/support.rs, tests/desktop/run, bench/driver.py).
"""

import json
import sys

import boto3

endpoint = sys.argv[1]
session = boto3.session.Session(
    aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name="us-east-1"
)
iam = session.client("iam", endpoint_url=endpoint)

allow_all = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
trust = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/deployer"}, "Action": "sts:AssumeRole"}
        ],
    }
)

iam.create_user(UserName="deployer")
policy = iam.create_policy(PolicyName="allow-all", PolicyDocument=allow_all)["Policy"]["Arn"]
iam.attach_user_policy(UserName="deployer", PolicyArn=policy)
key = iam.create_access_key(UserName="deployer")["AccessKey"]
role = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=trust)["Role"]
iam.attach_role_policy(RoleName="deploy", PolicyArn=policy)
iam.create_user(UserName="auditor")
iam.attach_user_policy(UserName="auditor", PolicyArn=policy)
auditor = iam.create_access_key(UserName="auditor")["AccessKey"]

print(
    json.dumps(
        {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "role_arn": role["Arn"],
            "auditor_key_id": auditor["AccessKeyId"],
            "auditor_secret": auditor["SecretAccessKey"],
        }
    )
)
