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


READ_ACTIONS = ("s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation")
"""What a reader is granted on AWS. IAM names the action a request needs, not its API operation:
HeadObject needs s3:GetObject; ListObjectsV2 and HeadBucket need s3:ListBucket."""
MOTO_OPERATION_NAMES = {"s3:GetObject": ("s3:HeadObject",),
                        "s3:ListBucket": ("s3:ListObjectsV2", "s3:ListObjects", "s3:HeadBucket")}
"""What moto >= 5.2 checks instead: the API operation's own name (moto 5.1 checked the IAM action, as AWS
does). A policy here grants both, so each user is the same user on either moto, and on AWS."""


def policy(actions: tuple[str, ...]) -> str:
    """An IAM policy allowing ``actions`` (as AWS names them) on everything, as moto of any version reads it."""
    granted = [*actions, *(name for action in actions for name in MOTO_OPERATION_NAMES.get(action, ()))]
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": granted, "Resource": "*"}]})


USERS = {"reader": READ_ACTIONS, "writer": ("s3:*",),
         "fetcher": tuple(a for a in READ_ACTIONS if a != "s3:ListBucket")}
"""``writer`` may do anything, ``reader`` only read, ``fetcher`` read objects it is named but not list
the bucket (what a CI token often is)."""


@contextmanager
def server_with_users() -> Iterator[tuple[str, str, dict[str, tuple[str, str]]]]:
    """An S3 server that checks permissions (moto's IAM enforcement after the requests that set it
    up) with one bucket and the :data:`USERS`. Yields the endpoint, the bucket and each user's
    (access key id, secret)."""
    import boto3

    setup = 1 + 3 * len(USERS)  # the requests below, made before IAM is enforced
    with moto_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(setup)}) as endpoint:
        admin = {"endpoint_url": endpoint, "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                 "region_name": "us-east-1"}
        bucket = f"cache-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        keys = {}
        for user, actions in USERS.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="cache", PolicyDocument=policy(actions))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        yield endpoint, bucket, keys


@contextmanager
def missing_keys_forbidden(endpoint: str, access_key: str) -> Iterator[str]:
    """A loopback relay in front of ``endpoint`` that answers as AWS does a principal without
    s3:ListBucket: a GET or HEAD of an object that does not exist is 403 AccessDenied, not 404
    (so as not to tell what the bucket holds). moto does not model that rule; the relay changes
    only those answers, for requests signed with ``access_key``, and forwards the rest byte for byte
    (the Host header too, which the request's signature covers). Yields the relay's URL."""
    import http.client
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread
    from urllib.parse import urlsplit

    upstream = urlsplit(endpoint)
    denied = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
              b"<Message>Access Denied</Message></Error>")

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                connection.putheader(name, value)
            connection.endheaders(body or None)
            answer = connection.getresponse()
            data = answer.read()
            signed_by_them = f"Credential={access_key}/" in (self.headers.get("Authorization") or "")
            if answer.status == 404 and self.command in ("GET", "HEAD") and signed_by_them \
                    and urlsplit(self.path).path.strip("/").count("/") >= 1:
                self.answer(403, [("Content-Type", "application/xml"), ("Content-Length", str(len(denied)))], denied)
            else:
                headers = [h for h in answer.getheaders() if h[0].lower() not in ("transfer-encoding", "connection")]
                if self.command != "HEAD" and not any(h[0].lower() == "content-length" for h in headers):
                    headers.append(("Content-Length", str(len(data))))
                self.answer(answer.status, headers, data)
            connection.close()

        def answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            """Headers as given (a HEAD's Content-Length is the object's), the body unless HEAD."""
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = relay

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
