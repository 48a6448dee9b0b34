#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs the real
# components the integration tests drive (dockerd, a systemd manager, D-Bus,
# FUSE, Prometheus, Alertmanager, promtool, Python's OpenMetrics parser), then
# runs every test. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -v '^#' tests/packages.txt | xargs)
missing=()
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyPI packages (tests/python-requirements.txt) in a venv the tests find at
# target/test-venv (tests/deploy_manifests.rs).
venv=target/test-venv
if ! "$venv/bin/python3" -c 'import kubernetes_validate' 2>/dev/null; then
  echo "tests/run.sh: installing tests/python-requirements.txt into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/python-requirements.txt
fi

cargo build --all-targets
# Every collector exists, so every incident drill must run (tests/drills.rs).
export NODE_SENTINEL_DRILLS=1
# Test binaries run one after another; tests inside one binary run in parallel.
cargo test --all-targets
