#!/usr/bin/env bash
# Creates the local cluster's PKI with openssl into $EF_PKI, once: files that exist are reused (if the CA itself is
# missing, everything is made anew, so no leaf is ever signed by a different CA). Then the kubeconfigs:
#   $EF_KUBECONFIG (admin), $EF_STATE/{controller-manager,scheduler,provider}.kubeconfig
#
#   hack/pki.sh fleet DIR NAME SANS    only the NATS fleet's TLS (decision 0008), in DIR (0700), once: the fleet CA
#                                      (DIR/ca.crt, ca.key) and a serving certificate NAME.crt/NAME.key with the
#                                      subjectAltNames SANS (e.g. IP:127.0.0.1,DNS:hub.example), usable as server and
#                                      as client (hub members dial each other's cluster port with it); for the hub
#                                      and the registrar. An existing NAME.crt is kept: remove it to change its SANs.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
DAYS=3650
made=()

key() { [ -f "$1.key" ] || { openssl genrsa -out "$1.key" 2048 2>/dev/null; chmod 600 "$1.key"; }; }

# ca NAME CN
ca() {
  [ -f "$1.crt" ] && return 0
  key "$1"
  openssl req -x509 -new -sha256 -days "$DAYS" -key "$1.key" -subj "/CN=$2" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" 2>/dev/null
  made+=("$1")
}

# cert NAME CA SUBJECT client|server|both [SANS]
cert() {
  local name=$1 ca=$2 subj=$3 usage=$4 sans=${5:-}
  [ -f "$name.crt" ] && return 0
  key "$name"
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    case "$usage" in
      server) echo "extendedKeyUsage=serverAuth" ;;
      both) echo "extendedKeyUsage=serverAuth,clientAuth" ;;
      *) echo "extendedKeyUsage=clientAuth" ;;
    esac
    if [ -n "$sans" ]; then echo "subjectAltName=$sans"; fi
  } > "$ext"
  openssl req -new -sha256 -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  openssl x509 -req -sha256 -days "$DAYS" -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$ext"
  made+=("$name")
}

# fleet_tls DIR NAME SANS: the fleet CA in DIR (made once; without its key everything in DIR is made anew) and the
# serving certificate NAME with SANS.
fleet_tls() {
  local dir=$1 name=$2 sans=$3
  [[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || ef_die "pki.sh fleet: NAME must be lower-case letters, digits and -"
  [[ "$sans" =~ ^(IP|DNS):[^,]+(,(IP|DNS):[^,]+)*$ ]] || ef_die "pki.sh fleet: SANS must be IP:a.b.c.d or DNS:name entries, comma-separated"
  [ "$name" != ca ] || ef_die "pki.sh fleet: NAME ca is the CA's"
  mkdir -p "$dir"
  chmod 700 "$dir"
  cd "$dir"
  if [ ! -f ca.crt ] || [ ! -f ca.key ]; then rm -f ./*.crt ./*.key; fi
  ca ca "edgefarm-$EF_INSTANCE-fleet-ca"
  cert "$name" ca "/CN=$name" both "$sans"
  if [ ${#made[@]} -eq 0 ]; then echo "[pki] reusing the fleet TLS in $dir"; else echo "[pki] fleet TLS in $dir: ${made[*]}"; fi
}

if [ "${1:-}" = fleet ]; then
  [ $# -eq 4 ] || ef_die "usage: hack/pki.sh fleet DIR NAME SANS"
  fleet_tls "$2" "$3" "$4"
  exit 0
fi
[ $# -eq 0 ] || ef_die "usage: hack/pki.sh [fleet DIR NAME SANS]"

mkdir -p "$EF_PKI" "$EF_STATE"
chmod 700 "$EF_PKI"
cd "$EF_PKI"
if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
  rm -f ./*.crt ./*.key ./*.pub
  rm -f "$EF_KUBECONFIG" "$EF_STATE"/*.kubeconfig
fi

ca ca "edgefarm-$EF_INSTANCE-ca"
cert apiserver ca "/CN=kube-apiserver" server \
  "IP:127.0.0.1,IP:$EF_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" client
cert admin ca "/O=system:masters/CN=kubernetes-admin" client
cert controller-manager ca "/CN=system:kube-controller-manager" client
cert scheduler ca "/CN=system:kube-scheduler" client
cert provider ca "/O=edgefarm:providers/CN=edgefarm-provider" client
# The providers' kubelet API serving certificate (every replica listens on this host's address, ef_kubelet_address). The apiserver's
# apiserver-kubelet-client certificate, signed by the same CA, is what the kubelet API accepts (EF_KUBELET_CLIENT_CA).
cert kubelet-serving ca "/O=system:nodes/CN=system:node:edgefarm-provider" server "IP:127.0.0.1,IP:$(ef_kubelet_address),DNS:localhost"
# The cloud node's kubelet (EF_DEPLOY=cluster, hack/cloud-node.sh): its client certificate as Node $EF_CLOUD_NODE and
# its serving certificate.
cert cloud-node ca "/O=system:nodes/CN=system:node:$EF_CLOUD_NODE" client
cert cloud-node-serving ca "/O=system:nodes/CN=system:node:$EF_CLOUD_NODE" server "IP:127.0.0.1,IP:$(ef_kubelet_address),DNS:$EF_CLOUD_NODE"
# The cloud node's pod network (EF_CLOUD_NET=pod): kube-proxy (the built-in binding system:node-proxier names this
# user) and CoreDNS (ClusterRole edgefarm:coredns, hack/cloud-node.sh).
cert kube-proxy ca "/CN=system:kube-proxy" client
cert coredns ca "/CN=system:coredns" client
ca front-proxy-ca "edgefarm-$EF_INSTANCE-front-proxy-ca"
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" client
if [ ! -f sa.key ] || [ ! -f sa.pub ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null; chmod 600 sa.key
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  made+=(sa)
fi

# kubeconfig FILE USER CERTNAME
kubeconfig() {
  local file=$1 user=$2 name=$3
  [ -f "$file" ] && return 0
  local tmp="$file.tmp"; rm -f "$tmp"
  kubectl config --kubeconfig="$tmp" set-cluster edgefarm --server="https://127.0.0.1:$EF_APISERVER_PORT" \
    --certificate-authority="$EF_PKI/ca.crt" --embed-certs=true >/dev/null
  kubectl config --kubeconfig="$tmp" set-credentials "$user" --client-certificate="$EF_PKI/$name.crt" \
    --client-key="$EF_PKI/$name.key" --embed-certs=true >/dev/null
  kubectl config --kubeconfig="$tmp" set-context "$user@edgefarm" --cluster=edgefarm --user="$user" >/dev/null
  kubectl config --kubeconfig="$tmp" use-context "$user@edgefarm" >/dev/null
  chmod 600 "$tmp"; mv "$tmp" "$file"
  made+=("$(basename "$file")")
}
kubeconfig "$EF_KUBECONFIG" kubernetes-admin admin
kubeconfig "$EF_STATE/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
kubeconfig "$EF_STATE/scheduler.kubeconfig" system:kube-scheduler scheduler
kubeconfig "$EF_STATE/provider.kubeconfig" edgefarm-provider provider
kubeconfig "$EF_STATE/cloud-node.kubeconfig" "system:node:$EF_CLOUD_NODE" cloud-node
kubeconfig "$EF_STATE/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
kubeconfig "$EF_STATE/coredns.kubeconfig" system:coredns coredns
# Marks the state dir as this instance's (hack/clean.sh keeps other instances' dirs nested under the dev one).
echo "$EF_INSTANCE" > "$EF_STATE/.instance"

if [ ${#made[@]} -eq 0 ]; then echo "[pki] reusing $EF_PKI"; else echo "[pki] created in $EF_PKI: ${made[*]}"; fi
