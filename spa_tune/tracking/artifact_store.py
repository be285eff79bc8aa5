"""Whether an MLflow tracking server can keep artifacts, asked once before an experiment starts.

A server started with ``--artifacts-destination s3://...`` (as ``cluster/gpu.yaml`` does) stores
every trial's artifacts in the bucket itself; trials only talk to the server. A missing bucket or
refused credentials on the server would otherwise show up as a failed upload in every trial. One
listing of the server's artifact root (``GET /api/2.0/mlflow-artifacts/artifacts``) makes the
server reach its store now; MLflow's client would retry a failing server for minutes, so this asks
once with plain ``urllib``.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

LIST_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
NOT_SERVING = 503  # mlflow server --no-serve-artifacts: clients write to the artifact store themselves


def _request(url: str) -> urllib.request.Request:
    """A GET of ``url``, with MLflow's basic-auth login from the environment when one is set."""
    request = urllib.request.Request(url)
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _message(err: urllib.error.HTTPError) -> str | None:
    """MLflow's error message in a failed response (its first line), or None when the body has none."""
    try:
        text = json.loads(err.read().decode(errors="replace")).get("message")
    except (OSError, ValueError, AttributeError):
        return None
    return text.strip().splitlines()[0] if isinstance(text, str) and text.strip() else None


def artifact_store_problem(tracking_uri: str, timeout: float = 30.0) -> str | None:
    """Why the ``http(s)://`` tracking server cannot list its artifact store, or None.

    None also for other tracking URIs, for a server that does not serve artifacts, and for a
    server that asks for a login this one cannot give (the trials' client will).
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(_request(tracking_uri.rstrip("/") + LIST_ARTIFACTS), timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        message = _message(err)
        if err.code == NOT_SERVING or (err.code in (401, 403) and "artifact" not in (message or "")):
            return None
        return message or f"HTTP {err.code} listing its artifacts (see the server's log)"
    except (OSError, ValueError) as err:
        return f"no answer listing its artifacts ({getattr(err, 'reason', None) or err})"
