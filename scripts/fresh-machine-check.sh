#!/usr/bin/env bash
# The fresh-machine check: README's two commands on a Debian 12 machine that has never seen the project, so that a
# package installed by hand on a developer's machine cannot hide a missing install step.
#
# It builds a minimal Debian 12 (bookworm) root with debootstrap, copies this checkout into it (without build/,
# data/, runs/, web/node_modules/ and tests/clients/node_modules/), makes a second, identical root of it, and runs
# (chroot, with /proc, /sys and /dev mounted, and unmounted afterwards even on failure):
#   1. in the first root, README's first command, the main job, with a short training run, as a user who has sudo;
#   2. in the second, README's second command, the test suite, as root.
# Each command meets a bare machine, so neither can lean on what the other installed, built or downloaded, and the
# time each prints is its cost on a fresh machine; the two users cover both ways install-deps.sh installs (apt-get
# through sudo, and as root).
# From the host the roots take only its network set-up: the extra CA certificates in
# /usr/local/share/ca-certificates, apt's Acquire settings and npm's settings. Nothing is cached between runs: the
# roots are deleted at the end. It prints each command's time and exits 1 when either command fails.
#
# Usage (as root): scripts/fresh-machine-check.sh [--keep] [-- MAIN_JOB_ARGS...]
#   --keep          leave the roots in place, to look into a failure (their folder is printed)
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
checkout="/home/$user/moelab"
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

work="$(mktemp -d /var/tmp/moelab-fresh-machine.XXXXXX)"
chmod 755 "$work"  # mktemp's 0700 would shut the user with sudo out of their own machine

mounts_under_work() {  # deepest first
  awk -v w="$work" 'index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cleanup() {
  local status=$? pid link target
  # Stop anything the commands left running inside a root, then unmount, innermost first.
  for pid in /proc/[0-9]*; do
    link="$(readlink "$pid/root" 2>/dev/null || true)"
    if [[ "$link" == "$work"/* ]]; then kill -9 "${pid#/proc/}" 2>/dev/null || true; fi
  done
  while read -r target; do
    if [[ -n "$target" ]]; then umount "$target" 2>/dev/null || umount --lazy "$target" || true; fi
  done <<< "$(mounts_under_work)"
  if [[ -n "$(mounts_under_work)" ]]; then
    echo "fresh-machine check: still mounted under $work, left in place:" >&2
    mounts_under_work >&2
  elif ((keep)); then
    echo "fresh-machine check: the roots are kept in $work" >&2
  else
    rm -rf --one-file-system "$work"  # never crosses into a mount, should one be left
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

seconds_text() { echo "$(($1 / 60)) min $(($1 % 60)) s"; }

# The bare machine: Debian 12 as its installer leaves it, plus the host's network set-up and the checkout.
make_root() {  # make_root DIR (a new folder under $work)
  local root="${1:?}"
  [[ "$root" == "$work"/* ]] || { echo "make_root: $root is not under $work" >&2; exit 1; }
  if ! debootstrap --variant=minbase --include=ca-certificates,sudo bookworm "$root" "$mirror" \
    > "$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
  fi

  # A fresh Debian 12 install's package sources: the release, its updates and its security updates.
  rm -f "$root/etc/apt/sources.list"
  printf '%s\n' "Types: deb" "URIs: $mirror" "Suites: bookworm bookworm-updates" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
    "Types: deb" "URIs: ${mirror%/debian}/debian-security" "Suites: bookworm-security" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > "$root/etc/apt/sources.list.d/debian.sources"
  # What Debian's installer writes and debootstrap does not: the machine's own name resolves (sudo looks it up).
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$(hostname)" > "$root/etc/hosts"

  # The host's network set-up, and nothing else: extra CA certificates, apt's Acquire settings, npm's settings.
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  grep -hs '^[[:space:]]*Acquire::' /etc/apt/apt.conf /etc/apt/apt.conf.d/* > "$root/etc/apt/apt.conf.d/90host-network" ||
    true
  local npmrc_global
  npmrc_global="$(npm config get globalconfig 2>/dev/null || true)"
  if [[ -f "$npmrc_global" ]]; then cp "$npmrc_global" "$root/etc/npmrc"; fi  # Debian's npm reads /etc/npmrc

  # The user with sudo, who gets the checkout.
  chroot "$root" useradd --create-home --shell /bin/bash "$user"
  echo "$user ALL=(ALL) NOPASSWD: ALL" > "$root/etc/sudoers.d/$user"
  chmod 0440 "$root/etc/sudoers.d/$user"
  if [[ -f "$HOME/.npmrc" ]]; then
    cp "$HOME/.npmrc" "$root/root/.npmrc"
    cp "$HOME/.npmrc" "$root/home/$user/.npmrc"
  fi
  mkdir -p "$root$checkout"
  tar -C "$repo" --exclude=./build --exclude=./data --exclude=./runs --exclude=./web/node_modules --exclude=./tests/clients/node_modules -cf - . |
    tar -C "$root$checkout" -xf -
  chroot "$root" chown -R "$user:$user" "/home/$user"
}

mount_root() {  # mount_root DIR
  local root="${1:?}"
  [[ "$root" == "$work"/* ]] || { echo "mount_root: $root is not under $work" >&2; exit 1; }
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  mount -t tmpfs tmpfs "$root/dev/shm"  # Chromium's shared memory, the root's own
}

network_env=()  # the host's package-client settings that live in the environment
for var in NODE_EXTRA_CA_CERTS http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [[ -n "${!var:-}" ]]; then network_env+=("$var=${!var}"); fi
done

in_root() {  # in_root DIR USER COMMAND: runs COMMAND with bash in the checkout, in a clean environment
  local root="${1:?}" who="$2" home
  [[ "$who" == root ]] && home=/root || home="/home/$who"
  chroot --userspec="$who:$who" "$root" /usr/bin/env -i HOME="$home" USER="$who" LOGNAME="$who" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${network_env[@]}" \
    /bin/bash -c "cd $checkout && $3"
}

failed=0
summary=()
run_timed() {  # run_timed LABEL DIR USER COMMAND: prints the command's time; remembers a failure
  local label="$1" t=$SECONDS status=0
  echo "== $label, as $3 in $2: $4" >&2
  # In the background, so that a signal to this script is handled at once rather than after the command.
  in_root "$2" "$3" "$4" &
  wait $! || status=$?
  echo "== $label: exit $status after $(seconds_text $((SECONDS - t)))" >&2
  summary+=("$label (as $3): exit $status, $(seconds_text $((SECONDS - t)))")
  ((status == 0)) || failed=1
}

started=$SECONDS
echo "== debootstrap bookworm into $work/main (from $mirror), copied to $work/test" >&2
make_root "$work/main"
cp -a "$work/main" "$work/test"
summary+=("debootstrap and set-up of the two roots: $(seconds_text $((SECONDS - started)))")
mount_root "$work/main"
mount_root "$work/test"

run_timed "main job" "$work/main" "$user" "scripts/main.sh $(printf '%q ' "${main_args[@]}")"
run_timed "test command" "$work/test" root "scripts/test.sh"

printf 'fresh-machine check: %s\n' "${summary[@]}" >&2
if ((failed)); then
  echo "fresh-machine check: FAILED" >&2
  exit 1
fi
echo "fresh-machine check: passed" >&2
