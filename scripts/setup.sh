#!/usr/bin/env bash
# Set up Askr on a Debian/Ubuntu machine, then serve the demo app or run
# the tests.
#
#   scripts/setup.sh serve   install, build, set up the demo, askr serve
#   scripts/setup.sh test    install, build, set up the demo, run the tests
#   scripts/setup.sh         install and build only
#
# Idempotent: each step checks what is already there.  Environment:
#   ASKR_PHP_CONFIG   another php-config (a PHP 8.x NTS embed build) to use
#   ASKR_PHP_VERSION  the distribution's PHP to install (default: 8.2, or
#                     whichever 8.x embed library the distribution has)
#   ASKR_SKIP_APT=1   do not call apt-get (everything is installed already)
#   ASKR_VENV         where the Python virtualenv lives (default ./.venv)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mode=${1:-setup}
shift || true

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages.  The PHP ones are skipped when ASKR_PHP_CONFIG names
# another PHP build.  The servers (nginx, php-fpm, php-cgi) and clients
# (wrk, nghttp2-client, curl) are what the tests and bench compare against.
apt_packages=(
    liburing-dev gcc pkg-config python3-venv python3-dev
    php-laravel-framework
    nginx-light wrk nghttp2-client curl testssl.sh
)
php_packages_for() {
    local v=$1
    echo "libphp$v-embed php$v-dev php$v-cli php$v-cgi php$v-fpm" \
         "php$v-opcache php$v-sqlite3 php$v-mbstring php$v-xml php$v-curl"
}

# Debian 12 ships PHP 8.2, Ubuntu 22.04 8.1, Ubuntu 24.04 8.3, Debian 13
# 8.4: take the first whose embed library is installed, else the first
# apt can install.  ASKR_PHP_VERSION=8.x forces one.
pick_php_version() {
    if [ -n "${ASKR_PHP_VERSION:-}" ]; then
        echo "$ASKR_PHP_VERSION"
        return
    fi
    local v
    for v in 8.2 8.3 8.4 8.1; do
        dpkg-query -W -f='${Status}' "libphp$v-embed" 2>/dev/null \
            | grep -q "install ok installed" && { echo "$v"; return; }
    done
    for v in 8.2 8.3 8.4 8.1; do
        apt-cache policy "libphp$v-embed" 2>/dev/null \
            | grep -q "Candidate: [0-9]" && { echo "$v"; return; }
    done
    echo 8.2
}

install_debian_packages() {
    local want=("${apt_packages[@]}")
    if [ -z "${ASKR_PHP_CONFIG:-}" ]; then
        if [ "${ASKR_SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ] \
                && ! apt-cache policy libphp8.2-embed 2>/dev/null \
                    | grep -q "Candidate: [0-9]"; then
            apt-get update -q >/dev/null   # empty package lists (containers)
        fi
        local php_version
        php_version=$(pick_php_version)
        log "PHP $php_version (ASKR_PHP_VERSION picks another)"
        # shellcheck disable=SC2207 # the list is space-separated names
        want+=($(php_packages_for "$php_version"))
    fi

    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    if [ "${ASKR_SKIP_APT:-0}" = 1 ]; then
        log "missing Debian packages (ASKR_SKIP_APT=1): ${missing[*]}"
        return 0
    fi
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
}

# Debian enables a PHP module per SAPI (conf.d symlinks); the embed SAPI
# gets none by default.  Enable for it what the CLI has, so that Askr's
# PHP (askr.php_ini = system) loads the same extensions as php-cli.
enable_embed_modules() {
    command -v phpenmod >/dev/null || return 0
    local ver
    ver=$(php-config --version 2>/dev/null | cut -d. -f1,2) || return 0
    local cli=/etc/php/$ver/cli/conf.d embed=/etc/php/$ver/embed
    [ -d "$cli" ] && [ -d "$embed" ] || return 0
    local mods=()
    for f in "$cli"/*.ini; do
        [ -e "$f" ] || continue
        local m
        m=$(basename "$f" .ini)
        mods+=("${m#*-}")
    done
    [ ${#mods[@]} -gt 0 ] || return 0
    log "enabling PHP modules for the embed SAPI: ${mods[*]}"
    phpenmod -v "$ver" -s embed "${mods[@]}" || true
}

setup_venv() {
    local venv=${ASKR_VENV:-$here/.venv}
    if [ ! -x "$venv/bin/python" ]; then
        log "creating virtualenv $venv"
        python3 -m venv "$venv"
    fi
    log "installing Python packages"
    "$venv/bin/pip" install -q --disable-pip-version-check -e ".[test,bench]"
    export PATH="$venv/bin:$PATH"
}

build_native() {
    log "building the native parts (PHP bridge, io_uring shim)"
    python -m askr.build
}

setup_demo() {
    log "setting up the demo Laravel app"
    bash scripts/setup-laravel-app.sh
}

install_debian_packages
[ -n "${ASKR_PHP_CONFIG:-}" ] || enable_embed_modules
setup_venv
build_native
setup_demo

case "$mode" in
    serve)
        log "serving the demo app: askr serve --config examples/askr.toml $*"
        exec askr serve --config examples/askr.toml "$@"
        ;;
    test)
        log "running the tests"
        exec python -m pytest -q "$@"
        ;;
    setup)
        log "set up; run: .venv/bin/askr serve --config examples/askr.toml"
        ;;
    *)
        echo "usage: scripts/setup.sh [serve|test|setup] [args...]" >&2
        exit 2
        ;;
esac
