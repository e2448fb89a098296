#!/bin/sh
# Installs the Debian packages of deploy/packages.txt (or of the lists given as
# arguments) whose check fails; does nothing when all are there. Needs root (or
# sudo) only when something is missing.
set -eu
[ $# -gt 0 ] || set -- "$(dirname "$0")/packages.txt"
missing=""
for list in "$@"; do
while read -r pkg check; do
    case "$pkg" in ''|'#'*) continue ;; esac
    kind=${check%%:*}; name=${check#*:}
    case "$kind" in
        pc)  pkg-config --exists "$name" 2>/dev/null && continue ;;
        bin) command -v "$name" >/dev/null 2>&1 && continue ;;
        hdr) [ -e "/usr/include/$name" ] && continue ;;
        file) [ -e "$name" ] && continue ;;
        py)  /usr/bin/python3 -c "import $name" 2>/dev/null && continue ;;  # Debian's python3
        *)   echo "deps: $list: unknown check '$check' for $pkg" >&2; exit 2 ;;
    esac
    missing="$missing $pkg"
done < "$list"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: not root and no sudo; install:$missing" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists; refresh them once before installing.
$sudo apt-get update -q >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "deps: done"
