# mpi_launcher.sh: sourced by the end-to-end scripts (not a test itself). `pt_mpiexec ARGS...` runs
# the MPI launcher of the build under test: $PRETEXT_MPIEXEC (ctest sets it to the mpiexec CMake
# found, e.g. /usr/bin/mpiexec.mpich in an MPICH build), else mpiexec on PATH. Flags that only one
# launcher accepts are added after asking the launcher what it is (--version), never hard-coded:
# Open MPI's mpiexec needs --oversubscribe to start more ranks than cores; MPICH's (Hydra) does
# not know the flag and oversubscribes by itself.
pt_mpiexec_cmd=("${PRETEXT_MPIEXEC:-mpiexec}")
pt_mpiexec_kind=other
case "$("${pt_mpiexec_cmd[0]}" --version 2>&1 || true)" in
  *"Open MPI"* | *OpenRTE*) pt_mpiexec_kind=openmpi; pt_mpiexec_cmd+=(--oversubscribe) ;;
  *HYDRA* | *MPICH* | *"Intel(R) MPI"*) pt_mpiexec_kind=mpich ;;
esac
pt_mpiexec() { "${pt_mpiexec_cmd[@]}" "$@"; }
