# toolchain-aarch64-linux-gnu.cmake: cross-compiles for 64-bit ARM with Debian's cross compiler
# (gcc-aarch64-linux-gnu) against the arm64 packages of a multiarch system (dpkg
# --add-architecture arm64; libopenblas-dev:arm64, libcmocka-dev:arm64, zlib1g-dev:arm64), and runs
# the programs it builds (ctest) under qemu-aarch64 (Debian: qemu-user). Used with
# -DPRETEXT_ENGINE_ONLY=ON by scripts/ci-stage-aarch64.sh; no MPI or HDF5 is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Libraries and headers of the target only; programs (cmake, python) of the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
