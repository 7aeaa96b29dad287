#!/usr/bin/env bash
# Installs Debian's bubblewrap (the kernel sandbox every run_command runs in) and util-linux's
# prlimit (its resource limits), only if they are missing. Needs root to install (CI runs as root
# with no stdin); prints bwrap's path on its last line. Then checks that a sandbox can really be
# created here (user namespaces allowed), since the tools service refuses commands otherwise.
set -euo pipefail

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v prlimit >/dev/null || missing+=(util-linux)
if (( ${#missing[@]} )); then
  if [[ "$(id -u)" != "0" ]]; then
    echo "${missing[*]} missing and this script needs root to install it (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2
fi
bwrap="$(command -v bwrap || true)"
if [[ -z "$bwrap" ]]; then
  echo "bubblewrap could not be installed" >&2
  exit 1
fi
if ! "$bwrap" --unshare-user --unshare-pid --unshare-net --ro-bind /usr /usr --symlink usr/bin /bin \
    --symlink usr/lib /lib --symlink usr/lib64 /lib64 -- /usr/bin/true 2>/dev/null; then
  echo "bubblewrap is installed but cannot create a sandbox here (are user namespaces disabled?" \
    "see kernel.unprivileged_userns_clone / user.max_user_namespaces); run_command will be refused" >&2
fi
echo "$bwrap"
