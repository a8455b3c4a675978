#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (none runs on these machines):
#
# 1. hadolint lints it;
# 2. the `builder` stage's own instructions (WORKDIR, COPY, RUN) are replayed on this machine
#    in a scratch copy of the stage's filesystem, so its `cargo build` invocation runs exactly
#    as written, dependency layer included;
# 3. every file the final stage copies out of the builder must have been produced by that
#    replay.
#
# The replay builds in release mode into $CARGO_TARGET_DIR (default: the workspace's target/),
# so compiled dependencies are shared with other builds; from scratch that is a full release
# build of both binaries (about 15 minutes on two cores).
#
#   --lint-only  stops after step 1.
#   --quick      replays the stage with `cargo build --release` run as `cargo check` (debug,
#                sharing the dependencies `cargo clippy` already checked) and skips step 3:
#                it still proves the stage's COPY list, stand-in sources, manifests, lock file
#                and package/binary names, in about a minute. scripts/test.sh uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

hadolint=$(scripts/install-hadolint.sh)
"$hadolint" Dockerfile
echo "check-dockerfile: hadolint found nothing to report"
mode=${1:-full}
case $mode in
  --lint-only) exit 0 ;;
  --quick | full) ;;
  *) echo "usage: $0 [--lint-only | --quick]" >&2; exit 2 ;;
esac

target_dir=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd)
# Stands for the builder's filesystem root: container path /src is "$stage_root/src".
stage_root="$target_dir/dockerfile-builder"

# The Dockerfile as one instruction per line: comments dropped, continuations joined.
instructions() {
  sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' Dockerfile |
    sed -e ':join' -e '/\\$/{N;s/\\\n//;b join' -e '}'
}

# Copies build-context paths to a container path, with Docker's COPY semantics: a directory
# source copies its contents; a destination ending in / (or several sources) is a directory.
copy_into_stage() {
  local workdir=$1; shift
  local args=("$@")
  local destination=${args[-1]}
  unset 'args[-1]'
  case $destination in
    /*) destination="$stage_root$destination" ;;
    *) destination="$workdir/$destination" ;;
  esac
  if [ ${#args[@]} -gt 1 ] || [[ $destination == */ ]]; then mkdir -p "$destination"; fi
  local source
  for source in "${args[@]}"; do
    if [ -d "$repo/$source" ]; then
      mkdir -p "$destination"
      cp -a "$repo/$source/." "$destination"
    else
      cp -a "$repo/$source" "$destination"
    fi
  done
}

rm -rf "$stage_root"
mkdir -p "$stage_root/src"
# The stage's target/ is the shared target directory, so its artifacts are reused.
ln -s "$target_dir" "$stage_root/src/target"
replay_started=$(date +%s)

stage=""
workdir="$stage_root"
copied_out=()
while IFS= read -r line; do
  read -r keyword rest <<<"$line"
  keyword=${keyword^^}
  if [ "$keyword" = "FROM" ]; then
    if [[ $rest =~ [[:space:]][Aa][Ss][[:space:]]+([A-Za-z0-9_.-]+)$ ]]; then
      stage=${BASH_REMATCH[1]}
    else
      stage="final"
    fi
    continue
  fi
  if [ "$stage" = "builder" ]; then
    case $keyword in
      WORKDIR)
        workdir="$stage_root$rest"
        mkdir -p "$workdir"
        ;;
      COPY)
        read -r -a copy_args <<<"$rest"
        copy_into_stage "$workdir" "${copy_args[@]}"
        ;;
      RUN)
        if [ "$mode" = "--quick" ]; then rest=${rest//cargo build --release/cargo check}; fi
        echo "check-dockerfile: RUN $rest"
        (cd "$workdir" && env -u CARGO_TARGET_DIR sh -c "$rest")
        ;;
      ARG | ENV | LABEL) ;;
      *)
        echo "check-dockerfile: cannot replay builder instruction $keyword" >&2
        exit 1
        ;;
    esac
  elif [ "$keyword" = "COPY" ] && [[ $rest == --from=builder* ]]; then
    read -r -a copy_args <<<"${rest#--from=builder}"
    unset 'copy_args[-1]'
    copied_out+=("${copy_args[@]}")
  fi
done < <(instructions)

if [ "$mode" = "--quick" ]; then
  echo "check-dockerfile: builder stage replayed with cargo check: OK"
  exit 0
fi
if [ ${#copied_out[@]} -eq 0 ]; then
  echo "check-dockerfile: the final stage copies nothing from the builder stage" >&2
  exit 1
fi
for path in "${copied_out[@]}"; do
  built="$stage_root$path"
  if [ ! -f "$built" ]; then
    echo "check-dockerfile: the builder stage did not produce $path" >&2
    exit 1
  fi
  if [ "$(stat -c %Y "$built")" -lt "$replay_started" ]; then
    echo "check-dockerfile: $path is older than this replay: the builder stage did not rebuild it" >&2
    exit 1
  fi
  # The runtime image (distroless "cc") is sure to have glibc and libgcc_s; anything else the
  # binary links would be missing at run time.
  unexpected=$(ldd "$built" | awk '{print $1}' |
    grep -Ev '^(linux-vdso\.so|/lib64/ld-linux|ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)' || true)
  if [ -n "$unexpected" ]; then
    echo "check-dockerfile: $path needs libraries the runtime image lacks: $unexpected" >&2
    exit 1
  fi
  echo "check-dockerfile: builder produced $path (needs only glibc and libgcc_s)"
done

rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
host_rust=$(rustc --version | awk '{print $2}')
if [[ $host_rust != "$rust_version"* ]]; then
  echo "check-dockerfile: note: the image builds with Rust $rust_version, this machine has $host_rust"
fi
echo "check-dockerfile: OK"
