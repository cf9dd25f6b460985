#!/usr/bin/env bash
# The container engines and kernel settings the tests use, private to the
# test suite so they never touch a docker or podman set-up of the machine.
#
#   scripts/services.sh start docker   start dockerd on a private socket (or reuse it)
#   scripts/services.sh stop docker    stop that dockerd
#   scripts/services.sh status docker  exit 0 when it answers
#   scripts/services.sh start podman   write the private podman config (no daemon)
#   scripts/services.sh start rootless-podman
#                                      the user dp-rootless (with subordinate ids),
#                                      its runtime dir and private podman config;
#                                      prints the environment to run podman as it
#   scripts/services.sh stop rootless-podman   end that user's podman processes
#   scripts/services.sh binfmt         register qemu-aarch64 so arm64 binaries run
#   scripts/services.sh env            print the exports to use them by hand:
#                                      eval "$(scripts/services.sh env)"
#
# Everything lives under $DISTROLESS_PACK_TEST_DIR (default
# /tmp/distroless-pack-test). tests/support/engines.rs calls this script, so
# `cargo test` starts dockerd lazily; scripts/test.sh starts it up front and
# stops it at the end. Starting is serialised with flock, so parallel test
# processes share one dockerd.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
base="${DISTROLESS_PACK_TEST_DIR:-/tmp/distroless-pack-test}"
D="$base/docker"
P="$base/podman"
docker_host="unix://$D/docker.sock"
ready_timeout="${DP_DOCKERD_TIMEOUT:-60}"

die() {
  echo "services.sh: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "required tool \`$1\` is not installed: run \`apt-get install -y $2\` (scripts/install-deps.sh installs every test dependency)"
}

docker_answers() {
  DOCKER_HOST="$docker_host" timeout 15 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The pid of the dockerd this script started, when it is alive (not a zombie,
# and still a dockerd: pids are reused).
dockerd_pid() {
  local pid
  pid="$(cat "$D/dockerd.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  alive "$pid" && grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  return 0
}

alive() {
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

log_tail() {
  echo "---- last lines of $D/dockerd.log ----" >&2
  tail -n 25 "$D/dockerd.log" >&2 2>/dev/null || echo "(no log)" >&2
}

start_docker() {
  need dockerd docker.io
  need docker docker.io
  mkdir -p "$D"
  # traversable whatever the umask: a test runs docker as a user of the
  # docker group (the socket itself is root:docker 0660)
  chmod go+x "$base" "$D"
  exec 9>"$D/lock"
  flock -w $((ready_timeout + 30)) 9 || die "timed out waiting for the lock $D/lock held by another test process"
  if docker_answers; then
    echo "services.sh: dockerd already running at $docker_host" >&2
    return 0
  fi
  local pid waited=0
  pid="$(dockerd_pid)"
  if [ -n "$pid" ]; then
    # A dockerd of ours is alive but does not answer yet: give it the time.
    echo "services.sh: waiting for dockerd (pid $pid) to answer" >&2
    while alive "$pid" && ! docker_answers && [ "$waited" -lt "$ready_timeout" ]; do
      sleep 1
      waited=$((waited + 1))
    done
    if docker_answers; then
      echo "services.sh: dockerd ready at $docker_host" >&2
      return 0
    fi
    if alive "$pid"; then
      log_tail
      die "dockerd (pid $pid) runs but does not answer on $docker_host after ${ready_timeout}s; stop it with: scripts/services.sh stop docker"
    fi
    waited=0
  fi
  # No dockerd of ours is alive: drop pid files left by a killed one (a
  # zombie keeps its pid "alive" for dockerd's own check when nothing reaps).
  rm -f "$D/dockerd.pid" "$D/exec/containerd/containerd.pid"
  # Detached (setsid, own log, stdin from /dev/null) so it outlives the test
  # process that started it and never holds that process's pipes open.
  setsid dockerd \
    --iptables=false --ip6tables=false --storage-driver=vfs \
    --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
    --host "$docker_host" \
    >"$D/dockerd.log" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "services.sh: started dockerd (pid $pid) at $docker_host, log $D/dockerd.log" >&2
  until docker_answers; do
    if ! alive "$pid"; then
      log_tail
      die "dockerd exited during start-up (see $D/dockerd.log)"
    fi
    if [ "$waited" -ge "$ready_timeout" ]; then
      log_tail
      die "dockerd did not answer on $docker_host within ${ready_timeout}s (pid $pid)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "services.sh: dockerd ready at $docker_host" >&2
}

stop_docker() {
  local pid
  pid="$(dockerd_pid)"
  if [ -z "$pid" ]; then
    echo "services.sh: dockerd is not running" >&2
    return 0
  fi
  kill -TERM "$pid"
  local waited=0
  while alive "$pid"; do
    if [ "$waited" -ge 30 ]; then
      echo "services.sh: dockerd (pid $pid) did not stop within 30s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "services.sh: stopped dockerd (pid $pid)" >&2
}

start_podman() {
  need podman podman
  need runc runc
  mkdir -p "$P"
  # crun fails on these machines (cgroup hybrid mode); runc works with lower
  # ulimits. Storage is private so test images never mix with the machine's.
  local conf="$P/containers.conf" storage="$P/storage.conf"
  cat >"$conf.tmp.$$" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
  mv -f "$conf.tmp.$$" "$conf"
  cat >"$storage.tmp.$$" <<EOF
[storage]
driver = "overlay"
graphroot = "$P/storage"
runroot = "$P/run"
EOF
  mv -f "$storage.tmp.$$" "$storage"
}

# Rootless podman as the user dp-rootless: a passwd entry and subordinate
# uid/gid ranges (useradd gives them on Debian), an XDG_RUNTIME_DIR of its
# own, and storage (vfs: no fuse needed) under $base, all owned by it.
R="$base/rootless"
rootless_user=dp-rootless
start_rootless_podman() {
  need podman podman
  need runc runc
  need newuidmap uidmap
  if ! id -u "$rootless_user" >/dev/null 2>&1; then
    useradd --create-home --shell /usr/sbin/nologin "$rootless_user" >&2 ||
      die "useradd $rootless_user failed (needs root)"
  fi
  if ! grep -q "^$rootless_user:" /etc/subuid || ! grep -q "^$rootless_user:" /etc/subgid; then
    usermod --add-subuids 300000-365535 --add-subgids 300000-365535 "$rootless_user" >&2 ||
      die "usermod --add-subuids for $rootless_user failed"
  fi
  local uid gid
  uid="$(id -u "$rootless_user")"
  gid="$(id -g "$rootless_user")"
  mkdir -p "$R/run" "$R/storage" "$R/config"
  chmod go+x "$base" "$R"
  chown "$uid:$gid" "$R/run" "$R/storage" "$R/config"
  chmod 0700 "$R/run"
  cat >"$R/config/containers.conf.tmp.$$" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  mv -f "$R/config/containers.conf.tmp.$$" "$R/config/containers.conf"
  cat >"$R/config/storage.conf.tmp.$$" <<EOF
[storage]
driver = "vfs"
# rootless podman reads rootless_storage_path, not graphroot
rootless_storage_path = "$R/storage"
graphroot = "$R/storage"
runroot = "$R/run/containers"
EOF
  mv -f "$R/config/storage.conf.tmp.$$" "$R/config/storage.conf"
  chown "$uid:$gid" "$R/config/containers.conf" "$R/config/storage.conf"
}

# Ends what rootless podman left running as that user (its pause process).
stop_rootless_podman() {
  if id -u "$rootless_user" >/dev/null 2>&1; then
    pkill -KILL -u "$rootless_user" 2>/dev/null || true
  fi
}

# The environment of a command run as that user, one NAME=VALUE a line.
rootless_env() {
  local home
  home="$(getent passwd "$rootless_user" | cut -d: -f6)"
  echo "DP_ROOTLESS_USER=$rootless_user"
  echo "HOME=$home"
  echo "XDG_RUNTIME_DIR=$R/run"
  echo "CONTAINERS_CONF=$R/config/containers.conf"
  echo "CONTAINERS_STORAGE_CONF=$R/config/storage.conf"
}

binfmt_arm64() {
  need update-binfmts binfmt-support
  need qemu-aarch64-static qemu-user-static
  local dir=/proc/sys/fs/binfmt_misc
  if [ ! -e "$dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null ||
      die "cannot mount binfmt_misc on $dir (needs root; in a container start it --privileged): arm64 binaries cannot run"
  fi
  if ! grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >&2 ||
      die "update-binfmts --enable qemu-aarch64 failed (is qemu-user-static installed?)"
  fi
  grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null ||
    die "qemu-aarch64 is not enabled in $dir after update-binfmts"
}

print_env() {
  echo "export DOCKER_HOST=$docker_host"
  echo "export CONTAINERS_CONF=$P/containers.conf"
  echo "export CONTAINERS_STORAGE_CONF=$P/storage.conf"
}

case "${1:-} ${2:-}" in
  "start docker") start_docker ;;
  "stop docker") stop_docker ;;
  "status docker") docker_answers ;;
  "start podman") start_podman ;;
  "stop podman") ;;
  "start rootless-podman") start_rootless_podman && rootless_env ;;
  "stop rootless-podman") stop_rootless_podman ;;
  "binfmt "*) binfmt_arm64 ;;
  "env "*) print_env ;;
  *)
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
