#!/usr/bin/env bash
# Builds the coordinator's container image from deploy/docker/Dockerfile.coordinator and runs the
# binary's --check inside it, with podman (or docker). Not part of the test command: the build
# compiles the project inside the image (about half an hour on 2 cores).
#   scripts/container-check.sh                 base image debian:12 from a registry
#   scripts/container-check.sh --debootstrap   no registry reachable: make debian:12 and
#                                              debian:12-slim locally from Debian's archive first
#   ... --extra-ca FILE                        behind a TLS-intercepting proxy: npm inside the
#                                              build trusts this CA too (NODE_EXTRA_CA_CERTS)
# Inside a container, podman often cannot start containers itself (crun may not set rlimits);
# the image is then built with --isolation=chroot and checked by a RUN step in the image's own
# file system, which tests the same thing: the binary finds every library it needs there.
# The worker's image (CUDA base images from NVIDIA's registry) is not built here.
set -euo pipefail
cd "$(dirname "$0")/.."

tool=$(command -v podman || command -v docker || true)
[[ -n $tool ]] || { echo "container-check: neither podman nor docker is installed" >&2; exit 1; }
isolation=()
[[ $(basename "$tool") == podman ]] && isolation=(--isolation=chroot)

debootstrap=false
build_options=()
while (($#)); do
  case $1 in
    --debootstrap) debootstrap=true ;;
    --extra-ca) build_options+=(--volume "$(realpath "$2"):/run/extra-ca.pem:ro" --env NODE_EXTRA_CA_CERTS=/run/extra-ca.pem); shift ;;
    *) echo "usage: $0 [--debootstrap] [--extra-ca FILE]" >&2; exit 2 ;;
  esac
  shift
done

if $debootstrap && ! "$tool" image exists docker.io/library/debian:12 2>/dev/null; then
  root=$(mktemp -d)
  echo "container-check: debootstrap bookworm into $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  tar -C "$root" -c . | "$tool" import - docker.io/library/debian:12 >/dev/null
  "$tool" tag docker.io/library/debian:12 docker.io/library/debian:12-slim
  rm -rf "$root"
fi

started=$(date +%s)
"$tool" build "${isolation[@]}" "${build_options[@]}" -f deploy/docker/Dockerfile.coordinator -t sweep-coordinator .
echo "container-check: image built in $(($(date +%s) - started)) s"
if "$tool" run --rm sweep-coordinator --check; then
  echo "container-check: coordinator --check passed (run)"
else
  echo "container-check: '$tool run' is refused here; checking inside the image's file system"
  printf 'FROM sweep-coordinator\nRUN ["/usr/local/bin/coordinator", "--check"]\nRUN ["/usr/local/bin/sweepctl", "--help"]\n' |
    "$tool" build "${isolation[@]}" -t sweep-coordinator-check -f - .
  echo "container-check: coordinator --check passed (in the image's file system)"
fi
