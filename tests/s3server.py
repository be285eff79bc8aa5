"""A real S3-compatible server for the tests: moto's server on 127.0.0.1, with credentials checked.

moto's server checks signatures and IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests
have been served without: the first three make an administrator, whose key then makes the users
the tests hand out (each with its own key). A wrong key or a denied action is refused as AWS would.
The server leads its own process group and is stopped by its id (tests/servers.py).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .servers import Server, free_port

REGION = "us-east-1"
UNAUTHENTICATED = 3  # create_user, put_user_policy, create_access_key of the administrator
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Credentials:
    """An IAM user's access key."""

    user: str
    key_id: str
    secret: str


class S3Server:
    """``python -m moto.server`` on a free port of 127.0.0.1; ``admin`` may do anything."""

    def __init__(self, log_path: Path):
        port = free_port()
        # env(1) execs the server in place: the server itself leads the group, with authentication on
        command = ["env", f"INITIAL_NO_AUTH_ACTION_COUNT={UNAUTHENTICATED}", sys.executable, "-m", "moto.server",
                   "-H", "127.0.0.1", "-p", str(port)]
        self.server = Server(command, port, log_path)
        self.endpoint = self.server.base
        self.admin: Credentials | None = None

    def start(self, timeout: float = 60.0) -> S3Server:
        """Wait until the server answers, then create the administrator (the unauthenticated requests)."""
        deadline = time.time() + timeout
        while True:
            if self.server.process.poll() is not None:
                raise AssertionError(f"moto exited:\n{self.server.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError(f"moto did not answer:\n{self.server.log_path.read_text()}") from None
                time.sleep(0.3)
        self.admin = self._user("admin", ALLOW_ALL, Credentials("bootstrap", "bootstrap", "bootstrap"))
        return self

    def env(self, credentials: Credentials) -> dict[str, str]:
        """What a client needs in its environment to reach this server as ``credentials``."""
        return {
            "AWS_ACCESS_KEY_ID": credentials.key_id, "AWS_SECRET_ACCESS_KEY": credentials.secret,
            "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint,
        }

    def file_env(self, credentials: Credentials, folder: Path) -> dict[str, str]:
        """Like ``env``, with the key in a credentials file (``folder/credentials``) instead of the environment."""
        path = Path(folder) / "credentials"
        path.write_text(f"[default]\naws_access_key_id = {credentials.key_id}\n"
                        f"aws_secret_access_key = {credentials.secret}\n")
        path.chmod(0o600)
        return {"AWS_SHARED_CREDENTIALS_FILE": str(path), "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str, credentials: Credentials | None = None):
        """A boto3 client of this server (as the administrator unless ``credentials`` are given)."""
        import boto3

        who = credentials or self.admin
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=who.key_id, aws_secret_access_key=who.secret)

    def _user(self, name: str, policy: dict, creator: Credentials) -> Credentials:
        iam = self.client("iam", creator)
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(name, key["AccessKeyId"], key["SecretAccessKey"])

    def user(self, name: str) -> Credentials:
        """A new user allowed every S3 action."""
        return self._user(name, ALLOW_S3, self.admin)

    def deny(self, user: str, action: str, bucket: str) -> None:
        """From now on refuse ``action`` on ``bucket`` to ``user`` (an explicit Deny wins over the Allow)."""
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": action, "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
        self.client("iam").put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=json.dumps(policy))

    def allow_again(self, user: str) -> None:
        """Remove what ``deny`` added."""
        self.client("iam").delete_user_policy(UserName=user, PolicyName="deny")

    def create_bucket(self, name: str) -> str:
        """Create the bucket ``name``; its name."""
        self.client("s3").create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object of ``bucket`` under ``prefix``: key -> size."""
        found, token = {}, None
        s3 = self.client("s3")
        while True:
            page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
            token = page.get("NextContinuationToken")
            if not token:
                return found

    def read(self, bucket: str, key: str) -> bytes:
        """The bytes of one object."""
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def stop(self) -> list[int]:
        """Stop the server's process group; the pids that had to be killed."""
        return self.server.stop()
