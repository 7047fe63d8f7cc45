#!/usr/bin/env bash
# Builds every image fixture Coop's tests use into OUT:
#   OUT/gnupg/{signer,wrong}   private gpg homes (0700)
#   OUT/keys/                  public keys (.asc armored, .gpg binary keyring)
#                              and primary key fingerprints (.fpr)
#   OUT/rootfs/                uncompressed rootfs tarballs
#   OUT/www/SITE/              LXC image server trees (index + simplestreams)
#   OUT/malicious/             hostile archives for extraction tests
#
# Usage: build-images.sh OUT       (run as root; MIRROR=... overrides the mirror)
#
# The build goes to OUT.tmp.PID and is renamed to OUT at the end, so OUT is
# either absent or complete. OUT/.complete marks a finished build; if it is
# present the script exits at once.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUT" >&2
    exit 2
fi

OUT=$1
if [ -e "$OUT/.complete" ]; then
    exit 0
fi

# mmdebstrap --mode=root and ownership of the built files need root.
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root" >&2
    exit 1
fi

for cmd in mmdebstrap gpg gpgconf xz python3 sha256sum truncate; do
    if ! command -v "$cmd" >/dev/null; then
        echo "$0: missing command: $cmd" >&2
        exit 1
    fi
done

MIRROR=${MIRROR:-http://deb.debian.org/debian}
BUSYBOX=/bin/busybox
# Fixed so that build ids, expiry and tar mtimes are the same on every run;
# tests can rely on the build id below.
EPOCH=1764374400
BUILD=$(date -u -d "@$EPOCH" +%Y%m%d_%H:%M)
EXPIRY=$((EPOCH + 30 * 86400))

# Images are labelled with the architecture they are really built for.
ARCH=$(dpkg --print-architecture)
case "$ARCH" in
    amd64) LXC_ARCH=x86_64 ;;
    arm64) LXC_ARCH=aarch64 ;;
    i386) LXC_ARCH=i686 ;;
    armhf) LXC_ARCH=armv7l ;;
    *) LXC_ARCH=$ARCH ;;
esac

# A dynamically linked busybox would give a rootfs that cannot run.
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "$0: $BUSYBOX missing or not static (install busybox-static)" >&2
    exit 1
fi

# Never delete or overwrite something that is not a finished build of ours.
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null || echo x)" ]; then
    echo "$0: $OUT exists but is not a complete fixture build; remove it" >&2
    exit 1
fi

umask 022
OUT=$(realpath -m "$OUT")
mkdir -p "$(dirname "$OUT")"
TMP="$OUT.tmp.$$"
WORK="$TMP/.work"
# gpg puts its agent socket in the home directory when /run/user/UID is
# missing; a short home under /tmp keeps the socket path below the 108-byte
# limit whatever OUT is. The homes are copied into OUT at the end.
GPGTMP=$(mktemp -d /tmp/coop-gpg.XXXXXX)
SIGNER="$GPGTMP/signer"
WRONG="$GPGTMP/wrong"

# stop_agent HOME: stops the gpg-agent of HOME and waits until it is gone;
# gpgconf --kill only asks it to exit.
stop_agent() {
    local home=$1 i pid cmdline args
    gpgconf --homedir "$home" --kill all 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid=""
        for cmdline in /proc/[0-9]*/cmdline; do
            args=$(tr '\0' ' ' <"$cmdline" 2>/dev/null) || continue
            if [[ $args == gpg-agent\ *"--homedir $home "* ||
                $args == */gpg-agent\ *"--homedir $home "* ]]; then
                pid=${cmdline#/proc/}
                pid=${pid%/cmdline}
                break
            fi
        done
        [ -n "$pid" ] || return 0
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
}

cleanup() {
    local home
    for home in "$SIGNER" "$WRONG"; do
        if [ -d "$home" ]; then
            stop_agent "$home"
        fi
    done
    rm -rf "$GPGTMP" "$TMP"
}
trap cleanup EXIT
# Turn signals into a normal exit so that the cleanup above runs.
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$TMP"
mkdir -p "$WORK" "$TMP/keys" "$TMP/rootfs" "$TMP/www" "$TMP/malicious" "$TMP/gnupg"

# --- signing keys -----------------------------------------------------------

# make_key HOME NAME EMAIL: sign-only RSA key without passphrase.
make_key() {
    local home=$1 name=$2 email=$3
    mkdir -m 0700 "$home"
    gpg --homedir "$home" --batch --quiet --gen-key <<EOF
%no-protection
Key-Type: RSA
Key-Length: 3072
Key-Usage: sign
Name-Real: $name
Name-Email: $email
Expire-Date: 0
%commit
EOF
}

# fingerprint HOME: primary key fingerprint, 40 uppercase hex digits.
fingerprint() {
    gpg --homedir "$1" --batch --with-colons --fingerprint 2>/dev/null |
        awk -F: '$1 == "fpr" { print $10; exit }'
}

# sign HOME FILE: writes FILE.asc, a detached armored signature.
sign() {
    gpg --homedir "$1" --batch --quiet --yes --armor --detach-sign \
        --output "$2.asc" "$2"
}

echo "== keys"
make_key "$SIGNER" "Coop Test Signer" signer@coop.invalid
make_key "$WRONG" "Coop Wrong Key" wrong@coop.invalid
for key in signer wrong; do
    home="$GPGTMP/$key"
    gpg --homedir "$home" --batch --armor --export >"$TMP/keys/$key.asc"
    # Binary keyring for "gpgv --keyring FILE" (gpgv cannot read a pipe).
    gpg --homedir "$home" --batch --export >"$TMP/keys/$key.gpg"
    fingerprint "$home" >"$TMP/keys/$key.fpr"
    if ! grep -qE '^[0-9A-F]{40}$' "$TMP/keys/$key.fpr"; then
        echo "$0: could not read the $key fingerprint" >&2
        exit 1
    fi
done

# --- root filesystems -------------------------------------------------------

echo "== rootfs bookworm (mmdebstrap from $MIRROR)"
# The hooks run in mmdebstrap's shell with $1 = the chroot, hence the single
# quotes. LXC_NAME is replaced by the container name when it is created.
# shellcheck disable=SC2016
SOURCE_DATE_EPOCH=$EPOCH mmdebstrap --mode=root --variant=minbase \
    --customize-hook='echo LXC_NAME >"$1/etc/hostname"' \
    --customize-hook='printf "127.0.0.1\tlocalhost\n127.0.1.1\tLXC_NAME\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" >"$1/etc/hosts"' \
    bookworm "$TMP/rootfs/bookworm.tar" "$MIRROR"

echo "== rootfs busybox"
# Written with tarfile rather than from a staging directory so that device
# nodes, owners and the capability xattr do not depend on the filesystem
# the build runs on.
python3 - "$BUSYBOX" "$TMP/rootfs/busybox.tar" "$EPOCH" <<'PY'
import io
import struct
import sys
import tarfile

busybox, out, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
applets = ["sh", "ls", "cat", "echo", "id", "true", "false", "sleep", "ps",
           "mount", "hostname"]
days = epoch // 86400
# vfs_cap_data revision 2, effective flag set, permitted = CAP_NET_RAW (13).
cap_net_raw = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)

tf = tarfile.open(out, "w", format=tarfile.PAX_FORMAT)


def entry(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", gid=0,
          link="", dev=None, pax=None):
    info = tarfile.TarInfo("./" + name if name else ".")
    info.type = kind
    info.mode = mode
    info.uid, info.gid = 0, gid
    info.uname = info.gname = ""
    info.mtime = epoch
    info.linkname = link
    if dev:
        info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = pax
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def text(s):
    return s.encode()


D, L, C = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE
entry("", D, 0o755)
entry("bin", D, 0o755)
with open(busybox, "rb") as f:
    entry("bin/busybox", mode=0o755, data=f.read())
for applet in applets:
    entry("bin/" + applet, L, 0o777, link="busybox")
entry("dev", D, 0o755)
entry("dev/null", C, 0o666, dev=(1, 3))
entry("dev/zero", C, 0o666, dev=(1, 5))
entry("etc", D, 0o755)
entry("etc/group", data=text("root:x:0:\nshadow:x:42:\n"))
entry("etc/hostname", data=text("LXC_NAME\n"))
entry("etc/hosts", data=text("127.0.0.1\tlocalhost\n127.0.1.1\tLXC_NAME\n"
                             "::1\tlocalhost ip6-localhost ip6-loopback\n"))
entry("etc/os-release", data=text('ID=busybox\nVERSION_ID=1.36\n'
                                  'PRETTY_NAME="BusyBox"\n'))
entry("etc/passwd", data=text("root:x:0:0:root:/root:/bin/sh\n"))
entry("etc/shadow", mode=0o640, gid=42,
      data=text("root:*:%d:0:99999:7:::\n" % days))
entry("proc", D, 0o555)
entry("root", D, 0o700)
entry("sbin", D, 0o755)
entry("sbin/init", L, 0o777, link="../bin/busybox")
entry("sys", D, 0o555)
entry("tmp", D, 0o1777)
entry("usr", D, 0o755)
entry("usr/bin", D, 0o755)
entry("usr/bin/ping-like", mode=0o755,
      data=text('#!/bin/sh\nexec /bin/busybox ping "$@"\n'),
      pax={"SCHILY.xattr.security.capability": cap_net_raw.decode()})
entry("var", D, 0o755)
entry("var/run", D, 0o755)
tf.close()
PY

# --- per-image artifacts (shared by every site) ------------------------------

# prepare_image ID DIST RELEASE VARIANT OS_TITLE ROOTFS_TAR
# Leaves rootfs.tar.xz, meta.tar.xz and a tab-separated info line in
# $WORK/img/ID.
prepare_image() {
    local id=$1 dist=$2 release=$3 variant=$4 title=$5 rootfs=$6
    local dir="$WORK/img/$id"
    mkdir -p "$dir"
    echo "== compress $id"
    # Small blocks make the stream multi-block, as real images are.
    xz -T2 -6 --block-size=8MiB -c "$rootfs" >"$dir/rootfs.tar.xz"

    python3 - "$rootfs" "$dir/meta.tar" "$EPOCH" "$EXPIRY" "$LXC_ARCH" \
        "You just created a $title $release $LXC_ARCH ($BUILD) container." <<'PY'
import io
import sys
import tarfile

rootfs, out, epoch, expiry, lxc_arch, message = sys.argv[1:7]


def clean(name):
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


# Unprivileged containers cannot create device nodes; LXC skips these.
with tarfile.open(rootfs) as tf:
    devices = sorted("./" + clean(m.name) for m in tf
                     if m.ischr() or m.isblk())

common = "lxc.include = LXC_TEMPLATE_CONFIG/common.conf\n"
files = {
    "config": common + "lxc.arch = %s\n" % lxc_arch,
    "config-user": common
    + "lxc.include = LXC_TEMPLATE_CONFIG/userns.conf\n"
    + "lxc.arch = %s\n" % lxc_arch,
    "create-message": message + "\n",
    "excludes-user": "".join(d + "\n" for d in devices),
    "expiry": expiry + "\n",
    "templates": "/etc/hostname\n/etc/hosts\n",
}

with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
    root = tarfile.TarInfo(".")
    root.type, root.mode, root.mtime = tarfile.DIRTYPE, 0o755, int(epoch)
    tf.addfile(root)
    for name in sorted(files):
        data = files[name].encode()
        info = tarfile.TarInfo("./" + name)
        info.mode, info.mtime, info.size = 0o644, int(epoch), len(data)
        tf.addfile(info, io.BytesIO(data))
PY
    xz -T1 -6 -c "$dir/meta.tar" >"$dir/meta.tar.xz"
    rm "$dir/meta.tar"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$dist" "$release" "$ARCH" "$variant" \
        "$title" "$dist/$release/$variant,$dist/$release" >"$dir/info"
}

prepare_image bookworm debian bookworm default Debian "$TMP/rootfs/bookworm.tar"
prepare_image busybox busybox 1.36 default BusyBox "$TMP/rootfs/busybox.tar"

# --- image server sites ---------------------------------------------------------

# make_site SITE GPGHOME MODE IMAGE_ID...
# MODE: ok | nosig | tamper | truncate | missing. Everything is hashed and
# signed first; tamper/truncate/missing then damage rootfs.tar.xz so that
# the published checksums and signatures no longer match.
make_site() {
    local site=$1 home=$2 mode=$3
    shift 3
    local root="$TMP/www/$site" tsv="$WORK/$site.tsv"
    local id dist release arch variant title aliases rel dir f size
    local dirs=()
    case "$mode" in
        ok | nosig | tamper | truncate | missing) ;;
        *)
            echo "$0: unknown site mode $mode" >&2
            exit 1
            ;;
    esac
    echo "== site $site"
    mkdir -p "$root/meta/1.0" "$root/streams/v1"
    : >"$root/meta/1.0/index-system"
    : >"$tsv"
    for id in "$@"; do
        IFS=$'\t' read -r dist release arch variant title aliases <"$WORK/img/$id/info"
        rel="images/$dist/$release/$arch/$variant/$BUILD"
        dir="$root/$rel"
        dirs+=("$dir")
        mkdir -p "$dir"
        cp "$WORK/img/$id/rootfs.tar.xz" "$WORK/img/$id/meta.tar.xz" "$dir/"
        (cd "$dir" && sha256sum rootfs.tar.xz meta.tar.xz >SHA256SUMS)
        if [ "$mode" != nosig ]; then
            for f in rootfs.tar.xz meta.tar.xz SHA256SUMS; do
                sign "$home" "$dir/$f"
            done
        fi
        printf '%s;%s;%s;%s;%s;/%s/\n' "$dist" "$release" "$arch" "$variant" \
            "$BUILD" "$rel" >>"$root/meta/1.0/index-system"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$dist" "$release" "$arch" \
            "$variant" "$BUILD" "$rel" "$title" "$aliases" >>"$tsv"
    done
    cp "$root/meta/1.0/index-system" "$root/meta/1.0/index-user"
    # The indexes stay signed in every mode: they are what a client reads
    # first, and the damage under test is in the build folders.
    sign "$home" "$root/meta/1.0/index-system"
    sign "$home" "$root/meta/1.0/index-user"

    python3 - "$root" "$tsv" <<'PY'
import hashlib
import json
import os
import sys

root, tsv = sys.argv[1:3]


def sha256(*paths):
    h = hashlib.sha256()
    for path in paths:
        with open(os.path.join(root, path), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size(path):
    return os.path.getsize(os.path.join(root, path))


products = {}
with open(tsv) as f:
    for line in f:
        dist, release, arch, variant, build, rel, title, aliases = \
            line.rstrip("\n").split("\t")
        rootxz, meta = rel + "/rootfs.tar.xz", rel + "/meta.tar.xz"
        combined = sha256(meta, rootxz)
        products[":".join((dist, release, arch, variant))] = {
            "aliases": aliases,
            "arch": arch,
            "os": title,
            "release": release,
            "release_title": release,
            "variant": variant,
            "versions": {
                build: {
                    "items": {
                        "root.tar.xz": {
                            "ftype": "root.tar.xz",
                            "path": rootxz,
                            "sha256": sha256(rootxz),
                            "size": size(rootxz),
                        },
                        "lxd.tar.xz": {
                            "ftype": "lxd.tar.xz",
                            "path": meta,
                            "sha256": sha256(meta),
                            "size": size(meta),
                            "combined_sha256": combined,
                            "combined_rootxz_sha256": combined,
                        },
                    }
                }
            },
        }

index = {
    "format": "index:1.0",
    "index": {
        "images": {
            "datatype": "image-downloads",
            "path": "streams/v1/images.json",
            "format": "products:1.0",
            "products": sorted(products),
        }
    },
}
images = {
    "content_id": "images",
    "datatype": "image-downloads",
    "format": "products:1.0",
    "products": products,
}
for name, doc in (("index.json", index), ("images.json", images)):
    with open(os.path.join(root, "streams/v1", name), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
PY
    if [ "$mode" != nosig ]; then
        sign "$home" "$root/streams/v1/images.json"
    fi

    for dir in "${dirs[@]}"; do
        f="$dir/rootfs.tar.xz"
        size=$(stat -c %s "$f")
        case "$mode" in
            tamper)
                python3 - "$f" "$((size / 2))" <<'PY'
import sys

path, offset = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ 0xFF]))
PY
                ;;
            truncate) truncate -s "$((size / 2))" "$f" ;;
            missing) rm "$f" ;;
            *) ;;
        esac
    done
}

make_site good "$SIGNER" ok bookworm busybox
make_site tampered "$SIGNER" tamper busybox
make_site nosig "$SIGNER" nosig busybox
make_site wrongkey "$WRONG" ok busybox
make_site truncated "$SIGNER" truncate busybox
make_site missing "$SIGNER" missing busybox

# --- malicious archives ------------------------------------------------------

echo "== malicious archives"
python3 - "$TMP/malicious" "$EPOCH" <<'PY'
import io
import os
import sys
import tarfile

out, epoch = sys.argv[1], int(sys.argv[2])


def info(name, kind, **attrs):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mtime, ti.mode = kind, epoch, 0o644
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti


def reg(name, data):
    return info(name, tarfile.REGTYPE, size=len(data)), data


def sym(name, target):
    return info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def hard(name, target):
    return info(name, tarfile.LNKTYPE, linkname=target), None


archives = [
    ("dotdot", "regular file ../escape-dotdot, outside the target directory",
     [reg("../escape-dotdot", b"escaped\n")]),
    ("absolute", "regular file with absolute path /tmp/coop-escape-absolute",
     [reg("/tmp/coop-escape-absolute", b"escaped\n")]),
    ("symlink-escape", "symlink link -> /tmp, then file link/coop-escape-symlink"
     " written through it",
     [sym("link", "/tmp"), reg("link/coop-escape-symlink", b"escaped\n")]),
    ("symlink-escape-rel", "symlink up -> ../../../../../../tmp, then file"
     " up/coop-escape-symlink-rel written through it",
     [sym("up", "../../../../../../tmp"),
      reg("up/coop-escape-symlink-rel", b"escaped\n")]),
    ("hardlink-escape", "hard link stolen -> /etc/shadow (absolute target"
     " outside the tree)",
     [hard("stolen", "/etc/shadow")]),
    ("hardlink-dotdot", "hard link stolen -> ../../../../etc/shadow (relative"
     " target outside the tree)",
     [hard("stolen", "../../../../etc/shadow")]),
    ("device", "character device dev/evil 1:1 (/dev/mem)",
     [(info("dev/evil", tarfile.CHRTYPE, devmajor=1, devminor=1,
            mode=0o600), None)]),
]

with open(os.path.join(out, "README"), "w") as readme:
    for name, what, members in archives:
        # A harmless member first, so extraction has begun before the bad one.
        members = [reg("etc/ok", b"ok\n")] + members
        with tarfile.open(os.path.join(out, name + ".tar"), "w",
                          format=tarfile.USTAR_FORMAT) as tf:
            for ti, data in members:
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        readme.write("%s.tar(.xz): %s\n" % (name, what))
PY
for tarball in "$TMP"/malicious/*.tar; do
    xz -T1 -6 -c "$tarball" >"$tarball.xz"
done

# --- finish ---------------------------------------------------------------------

# No gpg-agent may outlive the build; the homes are then moved into OUT.
for key in signer wrong; do
    stop_agent "$GPGTMP/$key"
    cp -a "$GPGTMP/$key" "$TMP/gnupg/$key"
    find "$TMP/gnupg/$key" -type s -delete
done

rm -rf "$WORK"
# Readable by an ordinary user, except the private gpg homes.
find "$TMP" -path "$TMP/gnupg/*" -prune -o \
    -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
chmod 0700 "$TMP/gnupg/signer" "$TMP/gnupg/wrong"

touch "$TMP/.complete"
# A concurrent build that finished first wins; ours is dropped by the exit
# trap.
if ! mv -T "$TMP" "$OUT" 2>/dev/null; then
    if [ -e "$OUT/.complete" ]; then
        exit 0
    fi
    echo "$0: could not move $TMP to $OUT" >&2
    exit 1
fi

echo "== done in ${SECONDS}s: $OUT"
du -sh "$OUT"/rootfs/*.tar "$OUT"/www/good/images/*/*/*/*/*/rootfs.tar.xz
du -sh "$OUT"
