#!/usr/bin/env bash
# The Debian package, built and tried as an admin would: `cargo deb`, install it, check
# what it installed, run `postdesk check-config` as the service would (user postdesk, the
# installed paths, a credentials directory like the one systemd makes from
# LoadCredential=), `systemd-analyze verify` the installed unit, then purge it and check
# that nothing is left. Needs root (it installs a system package). scripts/test.sh runs it
# under CI=true, or with POSTDESK_PACKAGE_TEST=1.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'package-test: %s\n' "$*"; }
fail() { printf 'package-test: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs and purges the package)"
command -v systemd-analyze >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq systemd >/dev/null; }
if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install --locked --quiet cargo-deb
fi

say "building the package (release build)"
cargo deb --locked --quiet --strip 2>&1 | tail -n 5
deb=$(ls -t target/debian/postdesk_*.deb | head -n 1)
[ -f "$deb" ] || fail "no .deb in target/debian"
say "built $deb ($(du -h "$deb" | cut -f1))"

dpkg -s postdesk >/dev/null 2>&1 && apt-get purge -y -qq postdesk >/dev/null
apt-get install -y -qq "./$deb" >/dev/null || fail "installing $deb"
trap 'apt-get purge -y -qq postdesk >/dev/null 2>&1 || true' EXIT

# What it installed.
for f in /usr/bin/postdesk /etc/postdesk/postdesk.toml /usr/lib/sysusers.d/postdesk.conf \
         /usr/share/doc/postdesk/README.md /usr/share/postdesk/templates/reply.txt.hbs; do
    [ -e "$f" ] || fail "$f is missing"
done
unit=$(dpkg -L postdesk | grep -E '/systemd/system/postdesk\.service$' | head -n 1)
[ -n "$unit" ] && [ -f "$unit" ] || fail "the systemd unit is missing"
size=$(stat -c %s /usr/bin/postdesk)
[ "$size" -lt 60000000 ] || fail "/usr/bin/postdesk is $size bytes: not stripped?"
if file /usr/bin/postdesk 2>/dev/null | grep -q 'not stripped'; then fail "the binary is not stripped"; fi
getent passwd postdesk >/dev/null || fail "no user postdesk"
[ "$(stat -c '%U:%G %a' /etc/postdesk)" = "root:postdesk 750" ] || fail "/etc/postdesk is $(stat -c '%U:%G %a' /etc/postdesk)"
[ "$(stat -c '%U:%G %a' /etc/postdesk/postdesk.toml)" = "root:postdesk 640" ] || fail "postdesk.toml is $(stat -c '%U:%G %a' /etc/postdesk/postdesk.toml)"
[ "$(stat -c '%U %a' /var/lib/postdesk)" = "postdesk 700" ] || fail "/var/lib/postdesk is $(stat -c '%U %a' /var/lib/postdesk)"
say "installed: binary $(( size / 1048576 )) MB (stripped), unit $unit, user postdesk, /etc/postdesk root:postdesk 0750"

# check-config as the service sees it: its user, its paths, its credentials directory.
creds=$(mktemp -d /run/postdesk-creds.XXXXXX)
printf 'secret\n' > "$creds/imap-password"
chown -R postdesk:postdesk "$creds"; chmod 0500 "$creds"; chmod 0400 "$creds/imap-password"
out=$(runuser -u postdesk -- env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$creds" \
      POSTDESK_CONFIG=/etc/postdesk/postdesk.toml /usr/bin/postdesk check-config 2>&1) ||
    { rm -rf "$creds"; fail "check-config as the service: $out"; }
say "check-config as user postdesk: $out"
# Without the credential the service would not start, and says why.
if out=$(runuser -u postdesk -- env -i PATH=/usr/bin:/bin /usr/bin/postdesk \
         --config /etc/postdesk/postdesk.toml check-config 2>&1); then
    rm -rf "$creds"; fail "check-config passed without the IMAP password"
fi
echo "$out" | grep -q 'CREDENTIALS_DIRECTORY' || { rm -rf "$creds"; fail "unclear error without credentials: $out"; }
rm -rf "$creds"
# Admin commands run as the service user without its secrets, on the service's database.
maildir=$(mktemp -d /tmp/postdesk-maildir.XXXXXX)
mkdir -p "$maildir/cur" "$maildir/new" "$maildir/tmp"
printf 'From: ann@customer.example\r\nTo: support@example.com\r\nSubject: hello\r\nMessage-ID: <pkg-1@customer.example>\r\n\r\nhi\r\n' \
    > "$maildir/cur/1:2,S"
chmod -R a+rX "$maildir"
admin() { runuser -u postdesk -- env -i PATH=/usr/bin:/bin /usr/bin/postdesk --config /etc/postdesk/postdesk.toml "$@"; }
out=$(admin import maildir "$maildir" --json 2>&1) || fail "import as user postdesk: $out"
rm -rf "$maildir"
out=$(admin ticket list --json 2>&1) || fail "ticket list as user postdesk: $out"
echo "$out" | grep -q '"subject": "hello"' || fail "ticket list does not show the imported ticket: $out"
[ -f /var/lib/postdesk/postdesk.db ] || fail "the database is not in /var/lib/postdesk"
say "admin commands as user postdesk (no credentials): import, ticket list: ok"

out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
if echo "$out" | grep -v -E 'Failed to .*(bus|connect)|Cannot .*bus' | grep -qi 'postdesk.service'; then
    fail "systemd-analyze verify complains: $out"
fi
say "systemd-analyze verify $unit: ok"

apt-get purge -y -qq postdesk >/dev/null || fail "purging"
trap - EXIT
for f in /usr/bin/postdesk /etc/postdesk /var/lib/postdesk "$unit"; do
    [ ! -e "$f" ] || fail "$f is left after purge"
done
say "purged: nothing left"
say "ok"
