# Sourced by the image builders (hack/images.sh, hack/conformance-images.sh): what an image build depends on.
# oci_arch: this machine's architecture as OCI names it.
oci_arch() {
  case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; armv7l) echo arm ;; *) uname -m ;; esac
}
# build_inputs ARCH FILE...: one hash of the files' contents (not their paths: every checkout shares the cache and
# builds the same images), the compiler and ARCH. A builder skips its work while this matches what it last built.
build_inputs() {
  local arch=$1 f; shift
  { for f in "$@"; do sha256sum < "$f"; done; gcc --version | head -1; echo "$arch"; } | sha256sum | cut -d' ' -f1
}
