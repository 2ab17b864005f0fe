# Sourced by tools/build and tools/test: install what sysext-builder needs on
# a fresh Debian machine into the system (apt) and into ./.venv (pip).
# Idempotent; re-running only installs what is missing.
set -eu -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SYSEXT_BUILDER_VENV:-$TOP/.venv}
APT_PACKAGES="squashfs-tools erofs-utils systemd util-linux mount procps git python3-venv bash coreutils tar zstd xz-utils ca-certificates mmdebstrap e2fsprogs qemu-system-x86 xorriso"

log() { printf '%s bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

need_apt() {
    local missing=()
    for pkg in $APT_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

make_venv() {
    local extra=("$@")
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        python3 -m venv "$VENV"
    fi
    log "installing sysext-builder into $VENV (pip log: $VENV/pip.log)"
    local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
    if ! { "${pip[@]}" --upgrade pip &&
           "${pip[@]}" -r "$TOP/requirements.txt" "${extra[@]}" &&
           "${pip[@]}" --no-deps -e "$TOP"; } > "$VENV/pip.log" 2>&1; then
        grep -v '^WARNING: Location' "$VENV/pip.log" | tail -30 >&2
        log "installing sysext-builder failed (full log: $VENV/pip.log)"
        exit 1
    fi
    "$VENV/bin/python" -c "import sysext_builder" \
        || { log "sysext-builder does not import after installing it"; exit 1; }
}
