#!/usr/bin/env bash
# Debian packages the stack needs beyond Python: nginx (the front door), chromium (browser tests) and
# postgresql (the tests run the job store on a throwaway PostgreSQL server too).
# Installs only what is missing and returns at once when everything is present; needs root (or
# sudo) and a reachable Debian mirror only when something is missing.
#
# Usage: scripts/system_packages.sh [--optional] [PACKAGE...]   (default: all three)
#   --optional  report a failed install and exit 0 (`make run` falls back to the service on 8080)
set -uo pipefail

declare -A WANT=([nginx]=/usr/sbin/nginx [chromium]=/usr/bin/chromium [postgresql]='/usr/lib/postgresql/*/bin/initdb')
present() { compgen -G "${WANT[$1]}" >/dev/null; }

OPTIONAL=0
[[ "${1:-}" == "--optional" ]] && OPTIONAL=1 && shift
wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=("${!WANT[@]}")
missing=()
for pkg in "${wanted[@]}"; do
    [[ -n "${WANT[$pkg]:-}" ]] || { echo "system packages: unknown package $pkg (known: ${!WANT[*]})" >&2; exit 2; }
    present "$pkg" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
fail() {
    echo "system packages: $*" >&2
    [[ $OPTIONAL == 1 ]] && exit 0
    exit 1
}

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null && SUDO="sudo -n" ||
        fail "missing ${missing[*]}; install them as root: apt-get install -y ${missing[*]}"
fi
command -v apt-get >/dev/null || fail "missing ${missing[*]} and no apt-get to install them"

echo "system packages: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || fail "apt-get update failed"
# --no-install-recommends keeps chromium without its optional extras; policy-rc.d stops the
# package's own nginx service from starting on port 80 during the install.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $POLICY >/dev/null && $SUDO chmod +x $POLICY
    trap '$SUDO rm -f $POLICY' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
for pkg in "${missing[@]}"; do
    present "$pkg" || fail "$pkg installed but ${WANT[$pkg]} is missing"
done
echo "system packages: installed ${missing[*]}"
