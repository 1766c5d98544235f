#!/usr/bin/env bash
# The fresh-machine check: README's two commands on a Debian 12 machine that has never seen the project, so that a
# package installed by hand on a developer's machine cannot hide a missing install step.
#
# It builds a minimal Debian 12 (bookworm) root with debootstrap, copies this checkout into it (without build/,
# data/, runs/ and web/node_modules/), and runs inside it (chroot, with /proc, /sys and /dev mounted, and unmounted
# afterwards even on failure):
#   1. README's first command, the main job, with a short training run, as a user who has sudo;
#   2. README's second command, the test suite, as root.
# The main job goes first, on the bare root, so that nothing the tests install can hide a package it forgets; the
# two users cover both ways install-deps.sh installs (apt-get through sudo, and as root).
# From the host the root takes only its network set-up: the extra CA certificates in
# /usr/local/share/ca-certificates, apt's Acquire settings and npm's settings. Nothing is cached between runs: the
# root is deleted at the end. It prints each command's time and exits 1 when either command fails.
#
# Usage (as root): scripts/fresh-machine-check.sh [--keep] [-- MAIN_JOB_ARGS...]
#   --keep          leave the root in place, to look into a failure (its path is printed)
#   MAIN_JOB_ARGS   arguments for scripts/main.sh instead of the short run
#                   (--set train.steps=20 --set train.warmup_steps=5)
# Environment: MOELAB_DEBIAN_MIRROR, the Debian archive to install from (default http://deb.debian.org/debian).
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/fresh-machine-check.sh: needs root (debootstrap, chroot and mount); run it with sudo" >&2
  exit 1
fi
# Every mount below lives in a mount namespace of this script's own: whatever happens, none outlives it.
if [[ -z "${MOELAB_FRESH_CHECK_NAMESPACE:-}" ]]; then
  MOELAB_FRESH_CHECK_NAMESPACE=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
keep=0
main_args=(--set train.steps=20 --set train.warmup_steps=5)
while (($# > 0)); do
  case "$1" in
    --keep) keep=1 ;;
    --) shift; main_args=("$@"); break ;;
    *) echo "scripts/fresh-machine-check.sh: unknown option '$1' (expected --keep or -- MAIN_JOB_ARGS...)" >&2; exit 1 ;;
  esac
  shift
done

mirror="${MOELAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
user=moelab  # the user with sudo
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

root="$(mktemp -d /var/tmp/moelab-fresh-machine.XXXXXX)"
chmod 755 "$root"  # mktemp's 0700 would shut the user with sudo out of their own machine
mounted=()

mounts_under_root() {
  awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo
}

cleanup() {
  local status=$? pid link
  # Stop anything the commands left running inside the root, then unmount, innermost first.
  for pid in /proc/[0-9]*; do
    link="$(readlink "$pid/root" 2>/dev/null || true)"
    [[ "$link" == "$root" ]] && kill -9 "${pid#/proc/}" 2>/dev/null || true
  done
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[$i]}" 2>/dev/null || umount --lazy "${mounted[$i]}" || true
  done
  if [[ -n "$(mounts_under_root)" ]]; then
    echo "fresh-machine check: still mounted under $root, left in place:" >&2
    mounts_under_root >&2
  elif ((keep)); then
    echo "fresh-machine check: the root is kept at $root" >&2
  else
    rm -rf --one-file-system "$root"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_into_root() {  # mount_into_root TARGET MOUNT_ARGS...
  local target="$root$1"
  shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounted+=("$target")
}

started=$SECONDS
echo "== debootstrap bookworm into $root (from $mirror)" >&2
if ! debootstrap --variant=minbase --include=ca-certificates,sudo bookworm "$root" "$mirror" > "$root.debootstrap.log" 2>&1; then
  tail -n 30 "$root.debootstrap.log" >&2
  exit 1
fi
rm -f "$root.debootstrap.log"
debootstrap_seconds=$((SECONDS - started))

# A fresh Debian 12 install's package sources: the release, its updates and its security updates.
rm -f "$root/etc/apt/sources.list"
security="${mirror%/debian}/debian-security"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# The host's network set-up, and nothing else: extra CA certificates, apt's Acquire settings, npm's settings.
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
grep -hs '^[[:space:]]*Acquire::' /etc/apt/apt.conf /etc/apt/apt.conf.d/* > "$root/etc/apt/apt.conf.d/90host-network" || true
host_npmrc_global="$(npm config get globalconfig 2>/dev/null || true)"
[[ -f "$host_npmrc_global" ]] && cp "$host_npmrc_global" "$root/etc/npmrc"  # Debian's npm reads /etc/npmrc
network_env=()
for var in NODE_EXTRA_CA_CERTS http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [[ -n "${!var:-}" ]] && network_env+=("$var=${!var}")
done

# The user with sudo, who gets the checkout.
chroot "$root" useradd --create-home --shell /bin/bash "$user"
echo "$user ALL=(ALL) NOPASSWD: ALL" > "$root/etc/sudoers.d/$user"
chmod 0440 "$root/etc/sudoers.d/$user"
[[ -f "$HOME/.npmrc" ]] && cp "$HOME/.npmrc" "$root/root/.npmrc" && cp "$HOME/.npmrc" "$root/home/$user/.npmrc"
checkout="/home/$user/moelab"
mkdir -p "$root$checkout"
tar -C "$repo" --exclude=./build --exclude=./data --exclude=./runs --exclude=./web/node_modules -cf - . |
  tar -C "$root$checkout" -xf -
chroot "$root" chown -R "$user:$user" "/home/$user"

mount_into_root /proc -t proc proc
mount_into_root /sys -t sysfs sysfs
mount_into_root /dev --bind /dev
mount_into_root /dev/pts --bind /dev/pts
mount_into_root /dev/shm -t tmpfs tmpfs  # Chromium's shared memory, the root's own

in_root() {  # in_root USER COMMAND: runs COMMAND with bash in the checkout, in a clean environment
  local who="$1" home
  [[ "$who" == root ]] && home=/root || home="/home/$who"
  chroot --userspec="$who:$who" "$root" /usr/bin/env -i HOME="$home" USER="$who" LOGNAME="$who" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${network_env[@]}" \
    /bin/bash -c "cd $checkout && $2"
}

failed=0
run_timed() {  # run_timed LABEL USER COMMAND: prints the command's time; remembers a failure
  local label="$1" t=$SECONDS status=0
  echo "== $label, as $2: $3" >&2
  # In the background, so that a signal to this script is handled at once rather than after the command.
  in_root "$2" "$3" &
  wait $! || status=$?
  local seconds=$((SECONDS - t))
  echo "== $label: exit $status after $((seconds / 60)) min $((seconds % 60)) s" >&2
  summary+=("$label (as $2): exit $status, $((seconds / 60)) min $((seconds % 60)) s")
  ((status == 0)) || failed=1
}
summary=()
run_timed "main job" "$user" "scripts/main.sh $(printf '%q ' "${main_args[@]}")"
run_timed "test command" root "scripts/test.sh"

echo "fresh-machine check: debootstrap $((debootstrap_seconds / 60)) min $((debootstrap_seconds % 60)) s" >&2
printf 'fresh-machine check: %s\n' "${summary[@]}" >&2
if ((failed)); then
  echo "fresh-machine check: FAILED" >&2
  exit 1
fi
echo "fresh-machine check: passed" >&2
