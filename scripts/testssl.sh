#!/bin/sh
# Run testssl.sh (Debian package testssl.sh) against Askr's TLS listener.
#
#   scripts/testssl.sh [OUT_DIR]
#
# Starts `askr serve` in classic mode on the bench docroot with a fresh
# self-signed certificate, TLS on a free loopback port, runs testssl's default
# checks, and leaves the log and JSON findings in OUT_DIR (default
# /tmp/askr-testssl).  Exit status: testssl's.  A self-signed certificate
# is an expected "trust" finding; the protocol, cipher and vulnerability
# sections are what this checks.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/askr-testssl}
askr="$top/.venv/bin/askr"
rm -rf "$out"
mkdir -p "$out"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
plain=$(free_port)
port=$(free_port)

"$askr" cert --out "$out/cert" localhost 127.0.0.1 >/dev/null
"$askr" serve --root "$top/bench/docroot" --workers 2 \
    --listen 127.0.0.1:$plain \
    --tls-listen 127.0.0.1:$port \
    --tls-cert "$out/cert/cert.pem" --tls-key "$out/cert/key.pem" \
    >"$out/askr.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT

i=0
until curl -skf -o /dev/null https://127.0.0.1:$port/hello.php; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "askr did not start:" >&2
        cat "$out/askr.log" >&2
        exit 1
    fi
    sleep 0.1
done

status=0
testssl --quiet --color 0 --warnings batch \
    --jsonfile "$out/testssl.json" --logfile "$out/testssl.log" \
    127.0.0.1:$port || status=$?

# One line per finding above LOW, then the count by severity.
python3 - "$out/testssl.json" <<'PY'
import collections, json, sys
findings = json.load(open(sys.argv[1]))
for f in findings:
    if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL"):
        print(f"testssl: {f['severity']} {f['id']}: {f['finding']}")
count = collections.Counter(f["severity"] for f in findings)
print("testssl: severities " + ", ".join(f"{k} {v}" for k, v in sorted(count.items())))
PY
exit $status
