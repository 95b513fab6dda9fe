# mpi-hdf5.cmake: included after find_package(MPI) and find_package(HDF5). pretext uses only
# HDF5's serial drivers, so FindHDF5 is asked for a serial HDF5 first (HDF5_PREFER_PARALLEL FALSE:
# it tries h5cc before h5pcc); a parallel HDF5 is used only when it is the only one found. A
# parallel HDF5 links its own MPI library: built against another MPI than the one pretext links
# (Debian: libhdf5-openmpi-dev with MPICH, the h5pcc alternative pointing at Open MPI's), the program
# would load two MPI libraries. That case is refused here, by the MPI flavour named in the paths
# of both (Debian, Spack and most module trees name it; an unnamed one is not checked).
function(pretext_mpi_flavour out text)
  string(TOLOWER "${text}" text)
  if(text MATCHES "mpich|mvapich|/impi/|intel-oneapi-mpi")
    set(${out} mpich PARENT_SCOPE) # MPICH and its ABI-compatible derivatives
  elseif(text MATCHES "openmpi|open-mpi")
    set(${out} openmpi PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

if(HDF5_IS_PARALLEL)
  pretext_mpi_flavour(pretext_mpi_kind "${MPI_C_LIBRARIES};${MPI_C_INCLUDE_DIRS}")
  pretext_mpi_flavour(pretext_hdf5_mpi_kind "${HDF5_C_LIBRARIES};${HDF5_C_INCLUDE_DIRS};${HDF5_INCLUDE_DIRS}")
  if(pretext_mpi_kind AND pretext_hdf5_mpi_kind AND NOT pretext_mpi_kind STREQUAL pretext_hdf5_mpi_kind)
    list(GET HDF5_C_LIBRARIES 0 pretext_hdf5_lib)
    message(FATAL_ERROR
      "the HDF5 found (${HDF5_C_COMPILER_EXECUTABLE}: ${pretext_hdf5_lib}) is a parallel HDF5 built with "
      "${pretext_hdf5_mpi_kind}, but the MPI found is ${pretext_mpi_kind} (${MPI_C_LIBRARIES}). pretext "
      "needs only a serial HDF5: install one (Debian: libhdf5-dev; Spack: hdf5~mpi) or point CMake at "
      "the HDF5 of the same MPI (-DHDF5_C_COMPILER_EXECUTABLE=/usr/bin/h5pcc.${pretext_mpi_kind} on "
      "Debian, or -DHDF5_ROOT=...), in a fresh build folder")
  endif()
endif()
if(HDF5_IS_PARALLEL)
  message(STATUS "pretext: HDF5 ${HDF5_VERSION} (parallel; only its serial drivers are used): ${HDF5_C_INCLUDE_DIRS}")
else()
  message(STATUS "pretext: HDF5 ${HDF5_VERSION} (serial): ${HDF5_C_INCLUDE_DIRS}")
endif()
message(STATUS "pretext: MPI ${MPI_C_VERSION}: ${MPI_C_LIBRARIES}; mpi.h in ${MPI_C_HEADER_DIR}; launcher ${MPIEXEC_EXECUTABLE}")
