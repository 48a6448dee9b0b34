#!/usr/bin/env bash
# Build the Debian package: a staged tree, then `dpkg-deb --build`.
#
#   packaging/deb/build.sh [BINARY] [OUTDIR]
#
# BINARY defaults to target/release/node-sentinel (cargo build --release
# first), OUTDIR to target/deb. Prints the path of the .deb.
# DEB_COMPRESSION=gzip builds faster than the default xz (the tests use it).
# The tree:
#   /usr/bin/node-sentinel                         the binary, stripped
#   /lib/systemd/system/node-sentinel.service      deploy/node-sentinel.service
#   /etc/default/node-sentinel                     its flags (a conffile)
#   /usr/share/node-sentinel/alerts/               the bundled rule files
#   /usr/share/node-sentinel/dashboards/           the Grafana dashboards
#   /usr/share/doc/node-sentinel/                  copyright, changelog, README, runbooks
#   /usr/share/man/man1/node-sentinel.1.gz         from --help
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=${1:-$root/target/release/node-sentinel}
out=${2:-$root/target/deb}
[ -x "$binary" ] || { echo "build.sh: no binary at $binary (cargo build --release)" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$out"

install -d "$stage/usr/bin"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  -o "$stage/usr/bin/node-sentinel" "$binary"
chmod 0755 "$stage/usr/bin/node-sentinel"
install -D -m0644 "$root/deploy/node-sentinel.service" "$stage/lib/systemd/system/node-sentinel.service"
install -D -m0644 "$here/default" "$stage/etc/default/node-sentinel"
for f in node-sentinel.rules.yml node-sentinel.recording.yml; do
  if [ -f "$root/alerts/$f" ]; then
    install -D -m0644 "$root/alerts/$f" "$stage/usr/share/node-sentinel/alerts/$f"
  fi
done
for f in "$root"/dashboards/*.json; do
  install -D -m0644 "$f" "$stage/usr/share/node-sentinel/dashboards/$(basename "$f")"
done
doc="$stage/usr/share/doc/node-sentinel"
install -D -m0644 "$here/copyright" "$doc/copyright"
gzip -9n -c "$here/changelog" > "$doc/changelog.gz"
gzip -9n -c "$root/README.md" > "$doc/README.md.gz"
for f in "$root"/docs/runbooks/*.md; do
  install -D -m0644 "$f" "$doc/runbooks/$(basename "$f")"
done
chmod 0644 "$doc/changelog.gz" "$doc/README.md.gz"
install -D -m0644 "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/node-sentinel"

# A manual page from --help: the flags as the binary itself states them.
man="$stage/usr/share/man/man1"
install -d "$man"
{
  echo '.TH NODE-SENTINEL 1 "" "node-sentinel '"$version"'" "User Commands"'
  echo '.SH NAME'
  echo 'node-sentinel \- Prometheus exporter that sees Kubernetes/Docker node outages coming'
  echo '.SH SYNOPSIS'
  echo '.B node-sentinel'
  echo '[\fIFLAGS\fR] [\fBdiagnose\fR]'
  echo '.SH DESCRIPTION'
  echo 'Serves node health metrics on /metrics (port 9899). Under systemd, flags'
  echo 'come from /etc/default/node-sentinel. Alert rules and dashboards are in'
  echo '/usr/share/node-sentinel.'
  echo '.SH OPTIONS'
  echo '.nf'
  "$binary" --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
  echo '.fi'
} | gzip -9n > "$man/node-sentinel.1.gz"
chmod 0644 "$man/node-sentinel.1.gz"

# The newest glibc symbol version the binary needs.
glibc=$(objdump -T "$stage/usr/bin/node-sentinel" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOT
Package: node-sentinel
Version: $version
Architecture: $arch
Maintainer: node-sentinel maintainers <maintainers@node-sentinel.invalid>
Installed-Size: $size
Depends: libc6 (>= $glibc), libgcc-s1 (>= 4.2)
Section: admin
Priority: optional
Homepage: https://github.com/node-sentinel/node-sentinel
Description: Prometheus exporter that sees node outages coming
 node-sentinel watches a Kubernetes or Docker node for what takes it down:
 a hung container runtime, disks and logs filling, systemd units stranded
 by a dependency's restart, unreaped zombies, kernel problems. It ships with
 Prometheus alert rules and Grafana dashboards.
EOT
echo /etc/default/node-sentinel > "$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
  install -m0755 "$here/$s" "$stage/DEBIAN/$s"
done
find "$stage" -type d -exec chmod 0755 {} +
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
  | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"

deb="$out/node-sentinel_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
