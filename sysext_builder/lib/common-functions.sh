# shellcheck shell=bash
# sysext-builder's shell library for element hooks.  Source it from a hook:
#
#     source "$SYSEXT_FUNCTIONS"
#
# Every function is safe under `set -eu -o pipefail`.

# Print an error and exit 1.
die() {
    echo "ERROR: $*" >&2
    exit 1
}

warn() {
    echo "WARNING: $*" >&2
}

info() {
    echo "$*" >&2
}

# Enable UNIT by a shipped TARGET.wants/ symlink.  TARGET defaults to the
# unit's [Install] WantedBy=.  Same as an `enable UNIT [TARGET]` line in the
# element's `units` file.
sysext_enable_unit() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: sysext_enable_unit UNIT [TARGET]"
    echo "enable $*" >> "${SYSEXT_UNITS_FILE:?not running under sysext-create}"
}

# Keep UNIT running through an Upholds= drop-in on TARGET (default
# multi-user.target is not assumed: WantedBy= of the unit, as for enable).
sysext_upholds_unit() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: sysext_upholds_unit UNIT [TARGET]"
    echo "upholds $*" >> "${SYSEXT_UNITS_FILE:?not running under sysext-create}"
}

# Enable the service UNIT (as sysext_enable_unit) and run it once per version of
# the extension: a drop-in adds ConditionPathExists=!MARKER and writes the marker
# /var/lib/NAME/once/UNIT-VERSION after a successful start.
sysext_once_unit() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: sysext_once_unit UNIT [TARGET]"
    echo "once $*" >> "${SYSEXT_UNITS_FILE:?not running under sysext-create}"
}

# Containment: die unless every existing component of DEST (absolute inside the
# image) below $TARGET_ROOT is a real directory and the last one is no symlink,
# so nothing is written through a symlink out of the tree (sysext_remove checks
# that the resolved parent stays inside).  Inside the chroot ($TARGET_ROOT is /)
# the chroot itself keeps writes inside.
_sysext_contained() {
    local what=$1 dest=$2 root=${TARGET_ROOT:?} sub="" part rest
    case "/$dest/" in
        */../*) die "$what: $dest contains '..'" ;;
    esac
    [ "$root" != / ] || return 0
    rest=${dest#/}
    while [ -n "$rest" ]; do
        part=${rest%%/*}
        if [ "$part" = "$rest" ]; then rest=""; else rest=${rest#*/}; fi
        if [ -z "$part" ] || [ "$part" = . ]; then continue; fi
        sub="$sub/$part"
        if [ -L "$root$sub" ]; then
            die "$what: $sub is a symlink in the image (to $(readlink "$root$sub")):" \
                "refusing to go through it"
        fi
        [ -e "$root$sub" ] || return 0
        if [ -n "$rest" ] && [ ! -d "$root$sub" ]; then
            die "$what: $sub is not a directory in the image"
        fi
    done
}

# Install SRC into the staging root at DEST (absolute inside the image) with MODE.
sysext_install_file() {
    [ $# -ge 2 ] || die "usage: sysext_install_file SRC DEST [MODE]"
    local src=$1 dest=$2 mode=${3:-0644}
    case "$dest" in
        /usr/*|/opt/*) ;;
        *) die "sysext_install_file: $dest is outside /usr and /opt" ;;
    esac
    _sysext_contained sysext_install_file "$dest"
    install -D -T -m "$mode" "$src" "${TARGET_ROOT:?}$dest"
}

# Append tmpfiles.d lines to usr/lib/tmpfiles.d/NAME.conf in the image.
sysext_tmpfiles() {
    [ $# -ge 2 ] || die "usage: sysext_tmpfiles NAME LINE..."
    local name=$1; shift
    case "$name" in
        */*|.|..|"") die "sysext_tmpfiles: bad name '$name'" ;;
    esac
    _sysext_contained sysext_tmpfiles "/usr/lib/tmpfiles.d/$name.conf"
    local dir="${TARGET_ROOT:?}/usr/lib/tmpfiles.d"
    mkdir -p "$dir"
    printf '%s\n' "$@" >> "$dir/$name.conf"
}

# Place FILE beside the image (never inside it) as NAME (default: its basename).
sysext_artifact() {
    [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: sysext_artifact FILE [NAME]"
    local name=${2:-$(basename "$1")}
    case "$name" in
        */*|.*|"") die "sysext_artifact: bad artifact name '$name'" ;;
    esac
    install -m 0644 "$1" "${SYSEXT_ARTIFACTS_DIR:?not running under sysext-create}/$name"
}

# Ask for Python packages in the image: each SPEC is pinned (name==version), an
# absolute path to a project directory, wheel or sdist, or git+https://...@REF.
# The builder installs them after the phase, into the target's site directory
# under /usr, with their dependencies (see sysext_builder/pip.py).
sysext_pip_install() {
    [ $# -ge 1 ] || die "usage: sysext_pip_install SPEC..."
    local requests="${SYSEXT_STATE_DIR:?not running under sysext-create}/pip-requests"
    local spec
    for spec in "$@"; do
        case "$spec" in
            ""|-*) die "sysext_pip_install: '$spec' is not a package spec (no pip options)" ;;
            *$'\n'*) die "sysext_pip_install: a SPEC cannot contain a newline" ;;
        esac
    done
    printf '# requested by %s\n' "${0##*/}" >> "$requests"
    printf '%s\n' "$@" >> "$requests"
}

# Remove PATH... (absolute paths inside the image) from the image being built.
# With --base only what the build added goes: an entry the base has is kept
# (a system extension cannot delete a file of the base), and below a directory
# of the base only the added entries are removed.  When building on a base it
# works in the host-side phases (extra-data.d, finalise.d, cleanup.d), where
# $SYSEXT_BASE_ROOT names the base tree.
sysext_remove() {
    local path
    for path in "$@"; do
        case "$path" in
            /*) ;;
            *) die "sysext_remove: $path is not an absolute path inside the image" ;;
        esac
        case "/$path/" in
            */../*) die "sysext_remove: $path contains '..'" ;;
        esac
        if [ "${SYSEXT_BASE:-0}" = 1 ] && [ -z "${SYSEXT_BASE_ROOT:-}" ]; then
            die "sysext_remove: with --base it runs in host-side phases only" \
                "(finalise.d, cleanup.d, extra-data.d)"
        fi
        _sysext_remove_added "${path%/}"
    done
}

_sysext_remove_added() {
    local rel=$1 root=${TARGET_ROOT:?} real_root parent entry
    [ -e "$root$rel" ] || [ -L "$root$rel" ] || return 0
    real_root=$(realpath "$root")
    parent=$(realpath "$(dirname "$root$rel")")
    case "$parent/" in
        "$real_root"/*) ;;
        *) die "sysext_remove: $rel leads out of the image root (through a symlink)" ;;
    esac
    if [ "${SYSEXT_BASE:-0}" != 1 ] || { [ ! -e "$SYSEXT_BASE_ROOT$rel" ] \
            && [ ! -L "$SYSEXT_BASE_ROOT$rel" ]; }; then
        rm -rf -- "${root:?}$rel"
        return 0
    fi
    # The base has it: keep it, but look for added entries below a directory.
    if [ -d "$root$rel" ] && [ ! -L "$root$rel" ] && [ ! -L "$SYSEXT_BASE_ROOT$rel" ]; then
        while IFS= read -r -d '' entry; do
            _sysext_remove_added "$rel/${entry##*/}"
        done < <(find "$root$rel" -mindepth 1 -maxdepth 1 -print0)
    fi
}
