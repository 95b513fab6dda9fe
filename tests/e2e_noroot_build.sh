#!/usr/bin/env bash
# e2e_noroot_build.sh: docs/install.md's build works for a user who is not root and has no
# CMocka. As an unprivileged user (PRETEXT_NOROOT_USER, default nobody; created with useradd if
# missing), in a copy of the source tree that user owns, with CMocka hidden from the file system
# (a mount namespace whose overlays of /usr/include and /usr/lib/<triplet> white out cmocka.h,
# libcmocka and their CMake/pkg-config files), it runs the page's commands literally:
#   cmake -S . -B build -DPRETEXT_TESTS=OFF ${PRETEXT_CMAKE_ARGS:-} && cmake --build build -j 4
#   cmake --install build --prefix "$HOME/opt/pretext"
#   mpirun -np 2 build/pretext run --config configs/smoke.ini --out results/smoke.h5   (+ overrides)
# and checks that the configure saw no CMocka and said the tests are off, that the program and
# the installed copy run, that the results file is complete, that nothing in the tree is owned by
# root, and that -DPRETEXT_TESTS=ON without CMocka stops at configure naming CMocka.
# Data: an 800 + 200 image folder from tests/idx_tool.py (smoke.ini on 800 images).
# Skipped (77) when not root (no way to become another user), when no unprivileged user can be
# had, or when MNIST is not in $PRETEXT_DATA_DIR or the source tree's data/mnist. Without mount
# namespaces or overlayfs, CMocka is hidden from CMake instead (empty CMOCKA_* cache entries; a
# note says so; PRETEXT_NOROOT_HIDE=cache forces that way). About 45 s on 2 cores.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to run the build as another, unprivileged user (this is uid $(id -u))"; exit 77; }
user="${PRETEXT_NOROOT_USER:-nobody}"
if ! id "$user" > /dev/null 2>&1; then
  command -v useradd > /dev/null || { echo "SKIP: no user '$user' and no useradd to create one"; exit 77; }
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user" \
    || { echo "SKIP: could not create the user '$user'"; exit 77; }
fi
uid="$(id -u "$user")"; gid="$(id -g "$user")"
[ "$uid" -ne 0 ] || { echo "SKIP: PRETEXT_NOROOT_USER=$user is root"; exit 77; }
if command -v setpriv > /dev/null; then
  as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }
elif command -v runuser > /dev/null; then
  as_user() { runuser -u "$user" -- "$@"; }
else
  echo "SKIP: neither setpriv nor runuser (util-linux) to become $user"; exit 77
fi
data="${PRETEXT_DATA_DIR:-$src/data/mnist}"
[ -f "$data/train-images-idx3-ubyte" ] || data="$src/data/mnist"
[ -f "$data/train-images-idx3-ubyte" ] || { echo "SKIP: no raw MNIST in \$PRETEXT_DATA_DIR or $src/data/mnist (scripts/fetch-data.sh)"; exit 77; }

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
home="$tmp/home"; tree="$home/pretext"
mkdir -p "$home/tmp" "$tree"
# The source tree as a clone would have it: tracked and new files, no build folders, data or results.
if git -c safe.directory="$src" -C "$src" rev-parse --git-dir > /dev/null 2>&1; then
  (cd "$src" && git -c safe.directory="$src" ls-files -z --cached --others --exclude-standard \
     | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
     | tar --null -T - -cf -) | tar -xf - -C "$tree"
else
  tar -C "$src" --exclude='./build*' --exclude=./data --exclude=./results --exclude=./.git -cf - . | tar -xf - -C "$tree"
fi
mkdir -p "$tree/results"
/usr/bin/python3 "$src/tests/idx_tool.py" small "$data" "$home/data" 800 200 > /dev/null \
  || python3 "$src/tests/idx_tool.py" small "$data" "$home/data" 800 200 > /dev/null
cp "$src/tests/mpi_launcher.sh" "$home/mpi_launcher.sh"
chown -R "$uid:$gid" "$home"

# What the user runs: docs/install.md section 2 and 4, literally where possible.
cat > "$home/as_user.sh" <<'EOF'
set -euo pipefail
cd "$HOME/pretext"
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -ne 0 ] || fail "running as root"
[ ! -e /usr/include/cmocka.h ] || [ -n "${PRETEXT_CMAKE_ARGS:-}" ] || fail "cmocka.h is visible"
echo "as $(id -un 2>/dev/null || id -u): cmake -S . -B build -DPRETEXT_TESTS=OFF ${PRETEXT_CMAKE_ARGS:-} && cmake --build build -j 4"
cmake -S . -B build -DPRETEXT_TESTS=OFF ${PRETEXT_CMAKE_ARGS:-} > "$HOME/configure.log" 2>&1 \
  || { cat "$HOME/configure.log"; fail "configure"; }
grep -q "tests are off" "$HOME/configure.log" || { cat "$HOME/configure.log"; fail "configure did not say the tests are off"; }
grep -E "^CMOCKA_(INCLUDE_DIR|LIBRARY):" build/CMakeCache.txt | grep -vqE ':(PATH|FILEPATH)=(.*NOTFOUND)?$' \
  && { grep CMOCKA build/CMakeCache.txt; fail "configure found CMocka"; }
cmake --build build -j 4 > "$HOME/build.log" 2>&1 || { tail -30 "$HOME/build.log"; fail "build"; }
build/pretext --version > "$HOME/version.log" || fail "pretext --version"
cmake --install build --prefix "$HOME/opt/pretext" > "$HOME/install.log" 2>&1 || { cat "$HOME/install.log"; fail "install"; }
"$HOME/opt/pretext/bin/pretext" --version > /dev/null || fail "installed pretext --version"
[ -f "$HOME/opt/pretext/share/pretext/configs/smoke.ini" ] || fail "smoke.ini not installed"
# The smoke run, with the launcher CMake found for this build (Open MPI's gets --oversubscribe).
PRETEXT_MPIEXEC="$(sed -n 's/^MPIEXEC_EXECUTABLE:FILEPATH=//p' build/CMakeCache.txt)"
. "$HOME/mpi_launcher.sh"
echo "as $(id -u): ${pt_mpiexec_cmd[*]} -np 2 build/pretext run --config configs/smoke.ini --out results/smoke.h5 (800 images)"
pt_mpiexec -np 2 build/pretext run --config configs/smoke.ini --out results/smoke.h5 \
  data.train_images=800 > "$HOME/run.log" 2>&1 || { cat "$HOME/run.log"; fail "smoke run"; }
grep -q "^done in" "$HOME/run.log" || { cat "$HOME/run.log"; fail "smoke run did not finish"; }
grep -q "2 ranks" "$HOME/run.log" || { head -3 "$HOME/run.log"; fail "smoke run did not run on 2 ranks"; }
# The page's claim: PRETEXT_TESTS=ON without CMocka is an error that names it.
if cmake -S . -B build-tests -DPRETEXT_TESTS=ON ${PRETEXT_CMAKE_ARGS:-} > "$HOME/configure-on.log" 2>&1; then
  cat "$HOME/configure-on.log"; fail "-DPRETEXT_TESTS=ON configured without CMocka"
fi
grep -q "CMocka" "$HOME/configure-on.log" || { cat "$HOME/configure-on.log"; fail "the error does not name CMocka"; }
echo "PRETEXT_TESTS=ON without CMocka: $(grep -m1 -o 'PRETEXT_TESTS=ON needs CMocka[^:]*' "$HOME/configure-on.log")"
EOF

# Hide CMocka in a private mount namespace (overlays with whiteouts), then become the user.
cat > "$tmp/hide_and_run.sh" <<'EOF'
set -euo pipefail
ovl="$1"; shift
mount -t tmpfs pretext-noroot "$ovl"
n=0
for dir in /usr/include /usr/local/include /usr/lib/"$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)" /usr/local/lib /usr/lib64; do
  [ -d "$dir" ] && [ ! -L "$dir" ] || continue
  mapfile -t hits < <(find "$dir" -mindepth 1 -maxdepth 3 \( -name '*cmocka*' -o -name '*cmockery*' \) -prune -print 2>/dev/null)
  [ "${#hits[@]}" -gt 0 ] || continue
  n=$((n + 1)); mkdir -p "$ovl/$n/u" "$ovl/$n/w"
  for h in "${hits[@]}"; do
    rel="${h#"$dir"/}"; mkdir -p "$ovl/$n/u/$(dirname "$rel")"; mknod "$ovl/$n/u/$rel" c 0 0
  done
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$ovl/$n/u,workdir=$ovl/$n/w" "$dir"
done
[ ! -e /usr/include/cmocka.h ] || { echo "cmocka.h still visible"; exit 1; }
echo "CMocka hidden in $n folders (mount namespace)"
exec "$@"
EOF
userenv=(env -i "HOME=$home" "TMPDIR=$home/tmp" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
         "LANG=C.UTF-8" "PRETEXT_DATA_DIR=$home/data" "OPENBLAS_NUM_THREADS=1")
t0=$SECONDS
mkdir -p "$tmp/ovl"
if [ "${PRETEXT_NOROOT_HIDE:-mount}" = mount ] && unshare -m --propagation private true 2> /dev/null \
   && unshare -m --propagation private bash "$tmp/hide_and_run.sh" "$tmp/ovl" true > /dev/null 2>&1; then
  unshare -m --propagation private bash "$tmp/hide_and_run.sh" "$tmp/ovl" \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "${userenv[@]}" bash "$home/as_user.sh" \
    || { echo "FAIL: the build as $user (above)"; exit 1; }
else
  echo "NOTE: CMocka is hidden from CMake only (empty CMOCKA_* cache entries): no mount namespace or overlayfs here, or PRETEXT_NOROOT_HIDE=cache"
  as_user "${userenv[@]}" "PRETEXT_CMAKE_ARGS=-DCMOCKA_INCLUDE_DIR= -DCMOCKA_LIBRARY=" bash "$home/as_user.sh" \
    || { echo "FAIL: the build as $user (above)"; exit 1; }
fi
# Everything the build and the run made belongs to the user.
owned_by_root="$(find "$tree" "$home/opt" -user root -print -quit)"
[ -z "$owned_by_root" ] || { echo "FAIL: $owned_by_root is owned by root"; exit 1; }
/usr/bin/python3 "$src/tests/results_tool.py" smoke "$tree/results/smoke.h5" 3 3 > /dev/null \
  || { echo "FAIL: the smoke results file is incomplete"; exit 1; }
echo "built, installed and ran the smoke configuration as $user (uid $uid) in $((SECONDS - t0)) s"
echo "e2e_noroot_build: 1 passed, 0 failed"
