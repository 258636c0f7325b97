#!/usr/bin/env bash
# The README's test command (`npm run test:all`) and CI's (.ci/run): what the tests need, then
# lint and every test. As root, it installs what is missing with apt-get; otherwise it says in
# one line what is missing (the tests that need it then say so themselves, once). Redis: the
# tests' own setup uses REDIS_URL, else 127.0.0.1:6379, else starts a throwaway redis-server
# (test/support/test-redis.ts). Without root the system tests skip, saying why in one line;
# with OVERLAY_REQUIRE_SYSTEM_TESTS=1 (CI) that line fails the run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# nft, conntrack, lldpd live in sbin, off a normal user's PATH on Debian.
PATH="$PATH:/usr/sbin:/sbin"

# redis-server: the tests' Redis when none runs, and the tests that crash or restart Redis run a
# private one; redis-sentinel: the failover test runs a private master, two replicas and three
# sentinels. iproute2, iputils-ping and nftables: the system tests build hypervisors in network
# namespaces and send real packets; conntrack: the firewall test reads the connection table to
# check per-segment zones; iputils-arping: a migrated test VM announces itself with a gratuitous
# ARP; tcpdump: the fail-closed test counts the frames that reach a closed VM; lldpd: the LLDP
# test's switch sends LLDP frames and each hypervisor's lldpd decodes them for the agent's
# inventory; prometheus: its promtool checks the /metrics expositions of overlayd and the agent
# (the package also brings the Prometheus server, unused here; under systemd Debian starts its
# unit, on :9090); chromium: the status page's test loads /ui in a real headless browser (driven
# by playwright-core); openssl: the TLS tests' certificates (scripts/dev-ca.sh).
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v arping >/dev/null 2>&1 || need+=(iputils-arping)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v lldpd >/dev/null 2>&1 || need+=(lldpd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "not installed (as root this script installs them with apt-get): ${need[*]}"
  fi
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run lint
npm test < /dev/null
