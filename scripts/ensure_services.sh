#!/usr/bin/env bash
# Makes the real components of the slow test layers available: Redis and PostgreSQL on 127.0.0.1
# (started with this machine kind's own commands when down), Krita + Xvfb, Chromium and GIMP
# (installed with apt when missing). Run by `./run test` under CI=true, where a missing component
# must never turn into a skipped layer.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.2
  done
  echo "$name did not come up on 127.0.0.1:$port" >&2
  return 1
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Another apt run (a provisioning script, unattended upgrades) may hold dpkg's lock: wait for it
# instead of failing the whole test run.
apt_get() { as_root apt-get -o DPkg::Lock::Timeout=900 "$@"; }

if ! port_open 6379; then
  echo "==> starting Redis"
  if ! command -v redis-server >/dev/null; then
    apt_get update -q && DEBIAN_FRONTEND=noninteractive apt_get install -y -q redis-server
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis
fi

if ! port_open 5432; then
  echo "==> starting PostgreSQL"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_get update -q && DEBIAN_FRONTEND=noninteractive apt_get install -y -q postgresql
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  wait_port 5432 PostgreSQL
fi

# Debian's Krita reads WebP (the horde's result format) only with Qt's image-format plug-ins;
# Krita's own AppImage/Windows/macOS builds bundle them. Debian's Chromium and its chromedriver
# run the web studio's browser test (tests/studio). GIMP 2.10 and libgimp2.0-dev (gimptool-2.0)
# build and run the GIMP plug-in (tests/gimp). iproute2's `ip` makes the network namespaces of
# the two-API-node test (tests/multinode).
missing=""
for package in krita xvfb xauth qt5-image-formats-plugins chromium chromium-driver gimp \
  libgimp2.0-dev iproute2; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $package"
done
if [ -n "$missing" ]; then
  echo "==> installing$missing (a few minutes)"
  apt_get update -q
  DEBIAN_FRONTEND=noninteractive apt_get install -y -q $missing
fi
echo "==> Redis, PostgreSQL, Krita, Chromium, GIMP and iproute2 are available"
