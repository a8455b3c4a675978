#!/usr/bin/env bash
# Obtains a real Kubernetes v1.20.2 control plane for the tests (etcd, kube-apiserver,
# kube-controller-manager, kubectl) and prints the directory holding them as the last line of
# stdout, the way envtest's KUBEBUILDER_ASSETS works.
#
#   1. $TERN_KUBE_ASSETS set: that directory must hold the executables; it is printed.
#   2. ${XDG_CACHE_HOME:-$HOME/.cache}/tern/kube-v1.20.2/ complete: printed at once (CI calls
#      this on every run, so this path does no apt or network work).
#      With --cached-only (what the test harness uses) the script stops here, failing when the
#      cache is incomplete, instead of building.
#   3. Otherwise it is built from Debian bookworm's own packages, since these machines have no
#      Kubernetes release downloads: the `kubernetes` source package's orig tarball (the full
#      v1.20.2 tree with vendor/) compiled with Debian's Go 1.19, and etcd from `etcd-server`.
#      The deb-src entry is derived from the machine's own apt sources, so no mirror is named.
#      Takes several minutes on two cores. Quiet on success; on failure prints the log's path.
#
# Under Go 1.19 the vendored modern-go/reflect2 1.0.1 segfaults on the first custom-resource
# create, so the vendored reflect2 and json-iterator are replaced by Debian's 1.0.2 and 1.1.12.
set -euo pipefail

cached_only=false
case "${1:-}" in
  --cached-only) cached_only=true ;;
  "") ;;
  *) echo "usage: $0 [--cached-only]" >&2; exit 2 ;;
esac

readonly KUBE_VERSION=v1.20.2
readonly KUBE_GIT_COMMIT_OF_RELEASE=faecb196815e248d3ecfb03c680a4507229c2a56
readonly DEBIAN_SOURCE_VERSION=1.20.5+really1.20.2-1.1+deb12u1
readonly GO_ROOT=/usr/lib/go-1.19
readonly EXECUTABLES=(etcd kube-apiserver kube-controller-manager kubectl)
readonly BUILD_DEBS=(golang-1.19-go golang-1.19-src rsync libpopt0 make dpkg-dev
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)

# Succeeds when $1 holds every executable the test harness starts.
holds_all_executables() {
  local dir=$1 name
  for name in "${EXECUTABLES[@]}"; do
    [ -x "$dir/$name" ] || return 1
  done
}

if [ -n "${TERN_KUBE_ASSETS:-}" ]; then
  if ! holds_all_executables "$TERN_KUBE_ASSETS"; then
    echo "kube-test-env: TERN_KUBE_ASSETS=$TERN_KUBE_ASSETS must hold executables: ${EXECUTABLES[*]}" >&2
    exit 1
  fi
  echo "$TERN_KUBE_ASSETS"
  exit 0
fi

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tern"
assets_dir="$cache_root/kube-$KUBE_VERSION"
if holds_all_executables "$assets_dir"; then
  echo "$assets_dir"
  exit 0
fi
if $cached_only; then
  echo "kube-test-env: no complete cache at $assets_dir; run scripts/kube-test-env.sh to build it" >&2
  exit 1
fi

mkdir -p "$cache_root"
log_file="$cache_root/kube-$KUBE_VERSION.build.log"
: >"$log_file"

# Two test runs starting at once must not build twice or see a half-written cache.
exec 9>"$cache_root/kube-$KUBE_VERSION.lock"
flock 9
if holds_all_executables "$assets_dir"; then
  echo "$assets_dir"
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "kube-test-env: need root (or sudo) to run: $*" >&2; return 1; fi
}

# Installs the build tools that are missing (the Go toolchain, Kubernetes' make helpers, and the
# sources of the fixed reflect2/json-iterator).
install_build_debs() {
  local missing=() deb
  for deb in "${BUILD_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'install ok installed' || missing+=("$deb")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Writes deb-src versions of the machine's apt sources (one-line `.list` and deb822 `.sources`
# formats) into $1, leaving the system's own apt configuration untouched.
write_deb_src_sources() {
  local apt_dir=$1 SOURCELIST SOURCEPARTS file
  eval "$(apt-config shell SOURCELIST Dir::Etc::sourcelist/f SOURCEPARTS Dir::Etc::sourceparts/d)"
  mkdir -p "$apt_dir/sources.list.d"
  : >"$apt_dir/sources.list"
  for file in "$SOURCELIST" "$SOURCEPARTS"*.list; do
    [ -f "$file" ] || continue
    sed -n -E 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "$file" >>"$apt_dir/sources.list"
  done
  for file in "$SOURCEPARTS"*.sources; do
    [ -f "$file" ] || continue
    # In each stanza whose Types include `deb`, ask for the sources instead.
    sed -E 's/^Types:.*\<deb\>([^-]|$).*$/Types: deb-src/' "$file" \
      >"$apt_dir/sources.list.d/$(basename "$file")"
  done
}

# Downloads the `kubernetes` source package into $1 with an apt configuration of its own.
download_kubernetes_source() {
  local download_dir=$1 apt_dir=$1/apt
  write_deb_src_sources "$apt_dir"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  local apt_options=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=$(id -un)"
  )
  # A third-party repository without source indexes makes `update` report an error; only the
  # `kubernetes` source matters, and `apt-get source` below fails clearly if it is missing.
  apt-get "${apt_options[@]}" update || echo "kube-test-env: apt-get update reported errors (continuing)"
  (cd "$download_dir" && apt-get "${apt_options[@]}" source --download-only "kubernetes=$DEBIAN_SOURCE_VERSION")
}

# Replaces a vendored Go package in the tree $1 with Debian's packaged source of it.
replace_vendored() {
  local tree=$1 import_path=$2
  [ -d "/usr/share/gocode/src/$import_path" ]
  rm -rf "${tree:?}/vendor/$import_path"
  cp -rL "/usr/share/gocode/src/$import_path" "$tree/vendor/$import_path"
}

build() {
  local work_dir=$1 tree=$1/kubernetes orig_tarball
  download_kubernetes_source "$work_dir"
  orig_tarball=$(find "$work_dir" -maxdepth 1 \( -name 'kubernetes_*.orig.tar.gz' -o -name 'kubernetes_*.orig.tar.xz' \) -print -quit)
  [ -n "$orig_tarball" ]
  mkdir -p "$tree"
  tar -xf "$orig_tarball" -C "$tree" --strip-components=1

  replace_vendored "$tree" github.com/modern-go/reflect2
  replace_vendored "$tree" github.com/json-iterator/go

  (
    cd "$tree"
    export GOROOT="$GO_ROOT" PATH="$GO_ROOT/bin:$PATH" GOPROXY=off CGO_ENABLED=0 \
      GOPATH="$work_dir/gopath" GOCACHE="$work_dir/gocache" \
      KUBE_GIT_VERSION="$KUBE_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 \
      KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT="$KUBE_GIT_COMMIT_OF_RELEASE"
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl"
  )

  local staging=$work_dir/assets name
  mkdir -p "$staging"
  for name in kube-apiserver kube-controller-manager kubectl; do
    cp "$tree/_output/bin/$name" "$staging/"
  done
  # etcd is unpacked from its package rather than installed, so no system etcd service starts.
  (cd "$work_dir" && apt-get download etcd-server)
  dpkg-deb -x "$(find "$work_dir" -maxdepth 1 -name 'etcd-server_*.deb' -print -quit)" "$work_dir/etcd-server"
  cp "$work_dir/etcd-server/usr/bin/etcd" "$staging/"
  holds_all_executables "$staging"
}

# A build killed outright (no EXIT trap) leaves its tree behind; we hold the lock, so any
# tree still there belongs to no running build.
rm -rf "$cache_root/kube-$KUBE_VERSION.tmp."*
work_dir=$(mktemp -d "$cache_root/kube-$KUBE_VERSION.tmp.XXXXXX")
# Runs on every exit: removes the build tree and, when the build failed, says where to look.
finish() {
  local status=$?
  # Go makes its module cache read-only; without write permission a non-root rm would fail.
  chmod -R u+w "$work_dir" 2>/dev/null || true
  rm -rf "$work_dir"
  if [ "$status" -ne 0 ]; then
    echo "kube-test-env: building the Kubernetes test binaries failed; last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2
  fi
}
trap finish EXIT
{
  install_build_debs
  build "$work_dir"
} >>"$log_file" 2>&1

# The rename is atomic: the cache directory is either absent or complete.
rm -rf "$assets_dir"
mv "$work_dir/assets" "$assets_dir"
echo "$assets_dir"
