#!/bin/sh
# The head node's MLflow tracking server, in the foreground: cluster/gpu.yaml starts it with nohup,
# tests/tracking/test_mlflow_load.py starts the same script on 127.0.0.1 and loads it with 32 trials.
#
# usage: cluster/mlflow_server.sh HOST PORT STATE_DIR ARTIFACTS_DESTINATION
#   STATE_DIR              absolute folder of the run store (STATE_DIR/mlflow.db, a SQLite database)
#   ARTIFACTS_DESTINATION  where the server puts artifacts: s3://bucket/prefix or an absolute folder
#   PYTHON (environment)   the interpreter that has mlflow installed (default: python)
set -eu
if [ $# -ne 4 ]; then
  echo "usage: $0 HOST PORT STATE_DIR ARTIFACTS_DESTINATION" >&2
  exit 2
fi
case "$3" in
  /*) ;;
  *) echo "$0: STATE_DIR must be an absolute folder (got $3)" >&2; exit 2 ;;
esac
mkdir -p "$3"
# A SQLite store: it serialises writers and MLflow waits up to 20 s for its lock (busy_timeout). 32
# trials logging at once lost nothing and never hit that wait (tests/tracking/test_mlflow_load.py;
# figures in docs/clusters.md), so the head needs no database server. Without a connection
# pool: with SQLAlchemy's default (5 + 10 connections per worker) bursts of requests waited 30 s for
# a connection and failed; opening a SQLite file per request is cheap and never runs out.
export MLFLOW_SQLALCHEMYSTORE_POOLCLASS="${MLFLOW_SQLALCHEMYSTORE_POOLCLASS:-NullPool}"
exec "${PYTHON:-python}" -m mlflow server --host "$1" --port "$2" --workers 4 \
  --backend-store-uri "sqlite:///$3/mlflow.db" --artifacts-destination "$4"
