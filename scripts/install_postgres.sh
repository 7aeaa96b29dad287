#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries (initdb, pg_ctl, postgres), only if they are
# missing. The tests start a private cluster from them (tests/storage/postgres_server.py); the
# services themselves only need a DSN. Needs root to install (CI runs as root with no stdin);
# prints the folder of the binaries on its last line. The package's own cluster is not used.
set -euo pipefail

find_postgres_bin() {
  local folder
  if [[ -n "${DUCKLM_POSTGRES_BIN:-}" && -x "$DUCKLM_POSTGRES_BIN/initdb" ]]; then
    echo "$DUCKLM_POSTGRES_BIN"
    return
  fi
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  for folder in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x "$folder/initdb" && -x "$folder/pg_ctl" && -x "$folder/postgres" ]]; then
      echo "$folder"
      return
    fi
  done
}

folder="$(find_postgres_bin)"
if [[ -z "$folder" ]]; then
  if [[ "$(id -u)" != "0" ]]; then
    echo "PostgreSQL is missing and this script needs root to install it (apt-get install postgresql)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >&2
  apt-get install -y -qq --no-install-recommends postgresql </dev/null >&2
  folder="$(find_postgres_bin)"
fi
if [[ -z "$folder" ]]; then
  echo "PostgreSQL could not be installed" >&2
  exit 1
fi
# The test cluster runs as an unprivileged user, since the server refuses to run as root.
if [[ "$(id -u)" == "0" ]] && ! command -v setpriv >/dev/null; then
  echo "setpriv (util-linux) is missing: the test cluster cannot drop root" >&2
  exit 1
fi
echo "$folder"
