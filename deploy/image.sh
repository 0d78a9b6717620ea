#!/usr/bin/env bash
# Builds switchboard's container image with podman or docker and checks it:
# the default config passes `check` inside the image, the container starts
# as a non-root user and answers /readyz and a webhook, and stops cleanly on
# SIGTERM.
#
#   deploy/image.sh [TAG]        (default TAG: localhost/switchboard:dev)
#
# Exit status: 0 built and checked, 1 failed, 77 cannot check here (no
# container engine, or one whose runtime cannot start containers on this
# machine); the reason is printed either way.
#
# Where the Go base image cannot be pulled (no registry access), the binary
# is built here with the local Go toolchain (static, CGO_ENABLED=0) and the
# image from it (the Dockerfile's BINARY=prebuilt). Where the engine cannot
# start a container with its defaults (some sandboxes refuse setrlimit, or
# crun refuses a hybrid cgroup hierarchy), the run is retried with runc and
# explicit --ulimit values, and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-localhost/switchboard:dev}
GO_IMAGE=${GO_IMAGE:-docker.io/library/golang:1.26-bookworm}
SKIP=77

engine=""
if command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
fi
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1; then
    echo "image: SKIP: the docker client is installed but no Docker engine answers (docker info fails), and podman is not installed"
  else
    echo "image: SKIP: neither podman nor docker is installed"
  fi
  exit $SKIP
fi
echo "image: using $engine ($($engine --version))"

work=$(mktemp -d)
name="switchboard-image-test-$$"
cleanup() {
  $engine rm -f "$name" >/dev/null 2>&1 || true
  $engine volume rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Build: the Dockerfile as users run it, or from a local binary.
if $engine pull -q "$GO_IMAGE" >"$work/pull.log" 2>&1; then
  echo "image: building with $GO_IMAGE"
  $engine build -t "$TAG" .
else
  echo "image: cannot pull $GO_IMAGE ($(tail -n1 "$work/pull.log")); building the binary with the local Go and the image from it"
  ctx="$work/context"
  mkdir -p "$ctx/prebuilt/state" "$ctx/deploy/container"
  CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags="-s -w" -o "$ctx/prebuilt/switchboard" ./cmd/switchboard
  ca=""
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    if [ -f "$f" ]; then ca=$f; break; fi
  done
  if [ -z "$ca" ]; then echo "image: FAIL: no CA bundle found on this machine"; exit 1; fi
  cp "$ca" "$ctx/prebuilt/ca-certificates.crt"
  cp Dockerfile "$ctx/"
  cp deploy/container/switchboard.yaml "$ctx/deploy/container/"
  $engine build --build-arg BINARY=prebuilt -t "$TAG" "$ctx"
fi
size=$($engine image inspect --format '{{.Size}}' "$TAG")
echo "image: built $TAG ($((size / 1024 / 1024)) MiB)"

# cannot_run ends the check when the container runtime itself refuses to
# start a container (the image is built; the machine cannot run it): a
# skip, saying why. Anything else is the image's fault.
cannot_run() {
  case "$1" in
    *"OCI runtime"*|*"OCI permission denied"*|*crun:*|*runc:*|*netavark*|*slirp4netns*|*cgroup*)
      echo "image: SKIP: $TAG is built, but this machine cannot start containers: $1"
      exit $SKIP ;;
  esac
  echo "image: FAIL: the container does not run: $1"
  exit 1
}

# Run: with the engine's defaults, or with the workaround this machine needs.
runflags=()
if ! out=$($engine run --rm --network none "$TAG" version 2>&1); then
  echo "image: '$engine run' with defaults failed: $out"
  if [ "$engine" = podman ] && command -v runc >/dev/null 2>&1; then
    # Limits no higher than this shell's: raising one needs CAP_SYS_RESOURCE.
    nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=65536
    [ "$nproc" = unlimited ] && nproc=32768
    nproc=$(( nproc < 4096 ? nproc : 4096 ))
    runflags=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    echo "image: retrying with ${runflags[*]}"
    if ! out=$($engine "${runflags[@]:0:2}" run --rm --network none "${runflags[@]:2}" "$TAG" version 2>&1); then
      cannot_run "$out"
    fi
  else
    cannot_run "$out"
  fi
fi
echo "image: $out"

engine_run() {
  if [ ${#runflags[@]} -gt 0 ]; then
    $engine "${runflags[@]:0:2}" run "${runflags[@]:2}" "$@"
  else
    $engine run "$@"
  fi
}

# The default config must pass check inside the image, as the image's user.
if ! out=$(engine_run --rm --network none "$TAG" check -c /etc/switchboard/switchboard.yaml 2>&1); then
  echo "image: FAIL: the default config does not pass check in the image: $out"
  exit 1
fi
echo "image: $out"

# Start it on free loopback ports of the host network (no port mapping to
# depend on) and wait for /readyz.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen=$(port); admin=$(port)
engine_run -d --name "$name" --network host -v "$name:/var/lib/switchboard" \
  -e "SWITCHBOARD_LISTEN=127.0.0.1:$listen" -e "SWITCHBOARD_ADMIN_LISTEN=127.0.0.1:$admin" "$TAG" >/dev/null
ready=""
for _ in $(seq 1 100); do
  if ready=$(curl -fsS "http://127.0.0.1:$admin/readyz" 2>/dev/null); then break; fi
  ready=""
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "image: FAIL: /readyz never answered 200; container logs:"
  $engine logs "$name" || true
  exit 1
fi
echo "image: /readyz: $ready"
answer=$(curl -fsS "http://127.0.0.1:$listen/hooks/events" -d '{"event":"image.test","id":"image-1"}')
echo "image: webhook: $answer"
case "$answer" in *'"accepted"'*) ;; *) echo "image: FAIL: the webhook was not accepted"; exit 1 ;; esac
user=$($engine inspect --format '{{.Config.User}}' "$name")
echo "image: runs as user $user"
[ "$user" = "65532:65532" ] || { echo "image: FAIL: the container does not run as 65532:65532"; exit 1; }

$engine stop -t 20 "$name" >/dev/null
code=$($engine inspect --format '{{.State.ExitCode}}' "$name")
if [ "$code" != 0 ]; then
  echo "image: FAIL: exit status $code after SIGTERM; logs:"
  $engine logs "$name" || true
  exit 1
fi
logs=$($engine logs "$name" 2>&1)
case "$logs" in
  *'"event_id":"image-1"'*) ;;
  *) echo "image: FAIL: the log sink never logged the event; logs:"; echo "$logs"; exit 1 ;;
esac
echo "image: OK: $TAG starts, answers /readyz, accepts and logs an event, stops with status 0"
