#!/bin/sh
# A test PKI for bank B's simulator in deploy/compose.yaml: a CA, a server certificate for the names
# the gateways reach the simulator by (bank-b, localhost, 127.0.0.1) and a client certificate for
# the gateway, in the layout `gateway simulate bank --pki-dir` reads (ca.pem, server.pem, server.key,
# client.pem, client.key). The simulator makes its own PKI when the folder is empty, but only for
# 127.0.0.1/localhost, which a gateway in another container cannot use.
#
#   deploy/test-pki.sh deploy/pki-b
#
# For tests only: the keys are left readable by every user (the containers run as uid 10001, not as
# the user who made them). A real bank issues the client certificate and names its own CA.
set -eu
dir=${1:?usage: test-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [ -e ca.pem ]; then
  echo "$dir already holds a PKI (ca.pem): remove it first" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Test bank B CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

key server.key
openssl req -new -key server.key -subj "/CN=bank-b" -out "$tmp/server.csr"
printf '%s\n' "basicConstraints=critical,CA:false" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:bank-b,DNS:localhost,IP:127.0.0.1" > "$tmp/server.ext"
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 825 \
  -extfile "$tmp/server.ext" -out server.pem 2>/dev/null

key client.key
openssl req -new -key client.key -subj "/CN=gateway" -out "$tmp/client.csr"
printf '%s\n' "basicConstraints=critical,CA:false" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=clientAuth" > "$tmp/client.ext"
openssl x509 -req -in "$tmp/client.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 825 \
  -extfile "$tmp/client.ext" -out client.pem 2>/dev/null

rm -f ca.key ca.srl
chmod 0644 ./*.pem ./*.key
echo "test PKI written to $dir: ca.pem, server.pem/.key (bank-b, localhost, 127.0.0.1), client.pem/.key"
