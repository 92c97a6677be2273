"""An Alibaba Cloud SDK client for the end-to-end tests: the official credentials SDK (PyPI
alibabacloud-credentials) resolves credentials the way an application would, then the official STS
SDK (alibabacloud-sts20150401) calls GetCallerIdentity with them at ENDPOINT (the test's STS
stand-in).

  aliyun_sdk.py profile ENDPOINT   credentials from the ~/.aliyun/config.json profile named by
                                   ALIBABA_CLOUD_PROFILE (an External one runs keyward)
  aliyun_sdk.py env ENDPOINT       credentials from ALIBABA_CLOUD_* variables (keyward exec)

Prints one JSON line: the access key id, whether a security token came with it, the identity STS
answered with.
"""

import json
import sys

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_credentials.provider.cli_profile import CLIProfileCredentialsProvider
from alibabacloud_credentials.provider.env import EnvironmentVariableCredentialsProvider
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.models import Config

source, endpoint = sys.argv[1], sys.argv[2]
provider = CLIProfileCredentialsProvider() if source == "profile" else EnvironmentVariableCredentialsProvider()
creds = provider.get_credentials()
client = StsClient(Config(
    credential=CredentialClient(provider=provider),
    endpoint=endpoint.split("://", 1)[1], protocol=endpoint.split("://", 1)[0]))
identity = client.get_caller_identity().body
print(json.dumps({"access_key_id": creds.get_access_key_id(),
                  "security_token": bool(creds.get_security_token()),
                  "arn": identity.arn}), flush=True)
