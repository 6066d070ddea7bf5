#!/usr/bin/env bash
# Installs what postdesk's integration tests need on a Debian/Ubuntu machine:
#   - Dovecot (dovecot-imapd): tests start private instances from generated configs on free
#     127.0.0.1 ports (tests/it/support/dovecot.rs); the system service is not needed and
#     is not left running.
#   - Python 3 with aiosmtpd, in the project's own virtual environment (.venv): the SMTP
#     sink (tests/support/smtp_sink.py).
#   - matrix-synapse (PyPI) in the same environment: the Matrix tests' homeserver
#     (tests/it/support/synapse.rs).
#   - openssl (the command line): the TLS tests make a private CA and a server certificate
#     with it at test time (TestCerts in tests/it/support/dovecot.rs).
#   - Chromium (Debian's chromium): the dashboard test drives a real headless browser over
#     the DevTools protocol (tests/it/support/chromium.rs).
#   - fonts-wqy-microhei: a font with Chinese glyphs for the digest's charts.
# No extra system user is created: as root the tests store mail as `nobody`, as an
# ordinary user they run Dovecot entirely as that user.
#
# Idempotent: run it as often as you like. Works as root, or as a user with sudo.
set -euo pipefail

say() { printf 'test-deps: %s\n' "$*"; }
die() { printf 'test-deps: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

as_root() {
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
        die "need root to run '$*'; run this script as root or install sudo"
    fi
    "${SUDO[@]}" "$@"
}

apt_updated=no
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found; install by hand: $* (Debian/Ubuntu package names)"
    # Update the package lists only when a package has no install candidate yet.
    if [ "$apt_updated" = no ]; then
        for package in "$@"; do
            if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [^(]'; then
                say "apt-get update (no install candidate for $package yet)"
                as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
                    die "apt-get update failed"
                apt_updated=yes
                break
            fi
        done
    fi
    say "apt-get install $*"
    # policy-rc.d exit code 101 tells invoke-rc.d/deb-systemd-invoke not to start services
    # during the install; only used if the machine has no policy of its own.
    local policy=/usr/sbin/policy-rc.d added_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=yes
    fi
    local status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        status=$?
    if [ "$added_policy" = yes ]; then
        as_root rm -f "$policy"
    fi
    [ "$status" -eq 0 ] || die "apt-get install $* failed (exit $status)"
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# --- Dovecot -------------------------------------------------------------------------
if installed dovecot-imapd; then
    say "dovecot-imapd is already installed"
else
    apt_install dovecot-imapd
fi
for program in dovecot doveadm; do
    command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] || [ -x "/usr/bin/$program" ] ||
        die "$program not found after installing dovecot-imapd"
done
for user in dovecot dovenull; do
    id "$user" >/dev/null 2>&1 || die "system user $user is missing; reinstall dovecot-core"
done
id nobody >/dev/null 2>&1 || die "user nobody is missing; the tests store mail as nobody when run as root"

# The system service would only take port 143 and is not used: stop it if it runs.
if [ -s /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null ||
    { command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; }; then
    say "stopping the system dovecot service (tests run their own instances)"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        as_root systemctl stop dovecot || true
        as_root systemctl disable dovecot >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        as_root service dovecot stop || true
    fi
    if [ -s /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
        die "the system dovecot (pid $(cat /run/dovecot/master.pid)) is still running; stop it by hand"
    fi
else
    say "the system dovecot service is not running (good: tests start their own)"
fi

# --- openssl -------------------------------------------------------------------------
if command -v openssl >/dev/null 2>&1 || [ -x /usr/bin/openssl ]; then
    say "openssl is already installed"
else
    apt_install openssl
fi

# --- A font with Chinese glyphs ----------------------------------------------------------
# The digest's charts are drawn with resvg, which draws no text without a font; the chart
# tests check that Chinese labels come out as glyphs, not boxes.
if installed fonts-wqy-microhei; then
    say "fonts-wqy-microhei is already installed"
else
    apt_install fonts-wqy-microhei
fi

# --- Chromium ---------------------------------------------------------------------------
# The dashboard's browser test starts it headless with a private profile on loopback.
if installed chromium || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    say "chromium is already installed"
else
    apt_install chromium
fi

# --- Python + aiosmtpd ---------------------------------------------------------------
# Python helpers live in a virtual environment inside the project (.venv), never in the
# system interpreter: nothing is pip-installed as root into /usr. POSTDESK_TEST_PYTHON
# names another interpreter that already has aiosmtpd.
top="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${POSTDESK_TEST_PYTHON:-}" ]; then
    PYTHON="$POSTDESK_TEST_PYTHON"
    "$PYTHON" -c 'import aiosmtpd' 2>/dev/null ||
        die "$PYTHON (POSTDESK_TEST_PYTHON) cannot import aiosmtpd"
else
    PYTHON="$top/.venv/bin/python3"
    if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
        command -v python3 >/dev/null 2>&1 || apt_install python3
        if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
            # Debian's python3 needs python3-venv for `python3 -m venv`.
            apt_install python3-venv
        fi
        [ -x "$PYTHON" ] || python3 -m venv "$top/.venv" || die "python3 -m venv .venv failed"
        say "installing aiosmtpd into $top/.venv"
        "$top/.venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd ||
            die "pip install aiosmtpd into .venv failed"
        "$PYTHON" -c 'import aiosmtpd' || die "aiosmtpd is still not importable by $PYTHON"
    else
        say "aiosmtpd is already in $top/.venv"
    fi
fi

# --- Synapse (Matrix homeserver) -------------------------------------------------------
# matrix-synapse from PyPI into the same interpreter's environment: the Matrix bridge's
# tests start a private homeserver on loopback with SQLite. Pinned: the version the tests
# were written against.
if "$PYTHON" -c 'import synapse' 2>/dev/null; then
    say "matrix-synapse is already installed for $PYTHON"
else
    say "installing matrix-synapse for $PYTHON"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check 'matrix-synapse==1.163.2' ||
        die "pip install matrix-synapse failed"
    "$PYTHON" -c 'import synapse' || die "synapse is still not importable by $PYTHON"
fi

say "ok: dovecot $(dovecot --version 2>/dev/null || /usr/sbin/dovecot --version), aiosmtpd $("$PYTHON" -c 'import aiosmtpd; print(aiosmtpd.__version__)'), synapse $("$PYTHON" -c 'import synapse; print(synapse.__version__)'), $(openssl version 2>/dev/null || /usr/bin/openssl version), $(chromium --version 2>/dev/null || chromium-browser --version)"
