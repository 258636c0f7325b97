#!/usr/bin/env bash
# Makes a development CA and certificates for overlayd and its agents (openssl).
#   scripts/dev-ca.sh DIR [controller-name ...] -- [host-name ...]
# DIR/ca.pem, DIR/ca-key.pem                      the CA
# DIR/controller.pem, DIR/controller-key.pem       server cert: SAN = localhost, 127.0.0.1 and the names given
# DIR/agent-<host>.pem, DIR/agent-<host>-key.pem   client certs: CN = the host's registered name
# For development and tests only: keys are unencrypted, the CA lives 30 days.
set -euo pipefail
dir=${1:?usage: dev-ca.sh DIR [controller-name ...] -- [host-name ...]}
shift
controllers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do controllers+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
hosts=("$@")
mkdir -p "$dir"
cd "$dir"

if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=overlay dev CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
fi

sign() { # name cn extfile
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
    -extfile "$3" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$3"
}

san="DNS:localhost,IP:127.0.0.1"
for name in "${controllers[@]+"${controllers[@]}"}"; do san="$san,DNS:$name"; done
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > controller.ext
sign controller overlayd controller.ext

for host in "${hosts[@]+"${hosts[@]}"}"; do
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=clientAuth\n' "$host" > "agent-$host.ext"
  sign "agent-$host" "$host" "agent-$host.ext"
done
echo "certificates in $dir"
