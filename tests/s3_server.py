"""A real S3 protocol server on loopback for tests and the remote-cache benchmark: moto's
standalone server, started on 127.0.0.1 on a free port, as s3fs's own tests do.

The environment it needs (endpoint, dummy credentials, no instance-metadata lookups) is what
boto reads, so modelkit's remote cache finds it exactly as it would find AWS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_env(endpoint: str) -> dict[str, str]:
    """What boto (and so s3fs) reads: the endpoint and dummy credentials."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
            "NO_PROXY": "127.0.0.1,localhost"}


@contextmanager
def moto_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """Run moto's S3 server until the block ends (``env``: moto's settings); yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def make_bucket(endpoint: str) -> str:
    """A new, empty bucket on the server; its name."""
    import boto3

    name = f"cache-{uuid.uuid4().hex[:12]}"
    env = client_env(endpoint)
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1").create_bucket(Bucket=name)
    return name


@contextmanager
def server_with_users() -> Iterator[tuple[str, str, dict[str, tuple[str, str]]]]:
    """An S3 server that checks permissions (moto's IAM enforcement after its first requests),
    with one bucket and two users: ``writer`` may do anything, ``reader`` only read. Yields the
    endpoint, the bucket and each user's (access key id, secret)."""
    import boto3

    setup = 7  # the requests below, made before IAM is enforced
    with moto_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(setup)}) as endpoint:
        admin = {"endpoint_url": endpoint, "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                 "region_name": "us-east-1"}
        bucket = f"cache-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        keys = {}
        for user, actions in (("reader", ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]),
                              ("writer", ["s3:*"])):
            iam.create_user(UserName=user)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
            iam.put_user_policy(UserName=user, PolicyName="cache", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        yield endpoint, bucket, keys
