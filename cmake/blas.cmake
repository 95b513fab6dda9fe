# blas.cmake: the CBLAS pretext links (the dense layers and `pretext bench --workload sgemm`).
# PRETEXT_BLAS picks the vendor: auto (OpenBLAS if found, else whatever CMake's FindBLAS finds, or
# CMake's BLA_VENDOR if the user set it), openblas, flexiblas (EasyBuild's foss toolchains), mkl,
# blis or generic (the reference BLAS with its CBLAS). Sets:
#   PRETEXT_BLAS_LIBRARIES      what to link: the INTERFACE target pretext_blas (the libraries, and
#                               the header folder as a SYSTEM include directory)
#   PRETEXT_CBLAS_INCLUDE_DIR   the folder of the vendor's cblas.h (mkl: mkl_cblas.h)
#   PRETEXT_BLAS_DEFINITIONS    PRETEXT_BLAS_VENDOR="<name>" and PRETEXT_BLAS_<NAME> (OpenBLAS's
#                               thread and configuration calls are used only under PRETEXT_BLAS_OPENBLAS)
set(pretext_bla_openblas OpenBLAS)
set(pretext_bla_flexiblas FlexiBLAS)
set(pretext_bla_mkl Intel10_64lp_seq)
set(pretext_bla_blis FLAME)
set(pretext_bla_generic Generic)

string(TOLOWER "${PRETEXT_BLAS}" pretext_blas)
if(pretext_blas STREQUAL "auto")
  if(NOT BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    if(NOT BLAS_FOUND)
      unset(BLA_VENDOR)
      unset(BLAS_FOUND)
      unset(BLAS_LIBRARIES)
    endif()
  endif()
  if(NOT BLAS_FOUND)
    find_package(BLAS)
  endif()
elseif(DEFINED pretext_bla_${pretext_blas})
  set(BLA_VENDOR ${pretext_bla_${pretext_blas}})
  # Debian and Ubuntu: /usr/lib/<triplet>/libblas.so is an alternatives link, usually to OpenBLAS;
  # the reference BLAS (with its CBLAS in the same library) is /usr/lib/<triplet>/blas/libblas.so.
  # Look there first, and give the program a run path to it (its soname, libblas.so.3, would
  # otherwise resolve through the alternatives again).
  set(pretext_saved_library_path "${CMAKE_LIBRARY_PATH}")
  if(pretext_blas STREQUAL "generic")
    foreach(dir ${CMAKE_C_IMPLICIT_LINK_DIRECTORIES})
      if(EXISTS "${dir}/blas/libblas.so" AND NOT "${dir}/blas" IN_LIST CMAKE_LIBRARY_PATH)
        list(PREPEND CMAKE_LIBRARY_PATH "${dir}/blas")
        list(APPEND CMAKE_INSTALL_RPATH "${dir}/blas")
        break()
      endif()
    endforeach()
  endif()
  find_package(BLAS)
  set(CMAKE_LIBRARY_PATH "${pretext_saved_library_path}")
else()
  message(FATAL_ERROR "PRETEXT_BLAS='${PRETEXT_BLAS}': expected auto, openblas, flexiblas, mkl, blis or generic")
endif()
if(NOT BLAS_FOUND)
  message(FATAL_ERROR "no BLAS found for PRETEXT_BLAS=${PRETEXT_BLAS}${BLA_VENDOR}: install one (Debian: "
                      "libopenblas-dev; modules: e.g. 'module load openblas'; Spack: openblas) or point "
                      "CMAKE_PREFIX_PATH at it")
endif()

# A "generic" libblas.so that is really another vendor's (an alternatives link): say so.
if(pretext_blas STREQUAL "generic")
  foreach(lib ${BLAS_LIBRARIES})
    get_filename_component(real "${lib}" REALPATH)
    if(real MATCHES "openblas|blis|mkl|flexiblas|atlas")
      message(WARNING "PRETEXT_BLAS=generic: ${lib} is ${real}, not the reference BLAS")
    endif()
  endforeach()
endif()

# Which vendor was found (auto, or BLA_VENDOR=All), from the libraries' names.
string(TOLOWER "${BLAS_LIBRARIES}" pretext_blas_libs)
if(pretext_blas_libs MATCHES "openblas")
  set(pretext_blas_vendor openblas)
elseif(pretext_blas_libs MATCHES "flexiblas")
  set(pretext_blas_vendor flexiblas)
elseif(pretext_blas_libs MATCHES "mkl")
  set(pretext_blas_vendor mkl)
elseif(pretext_blas_libs MATCHES "blis")
  set(pretext_blas_vendor blis)
else()
  set(pretext_blas_vendor generic)
endif()

# The vendor's CBLAS header: beside its libraries first, then the usual places. A library reached
# through a symbolic link counts from its real folder too: Debian's alternatives point
# /usr/lib/<triplet>/libblis.so at /usr/lib/<triplet>/blis-openmp/, whose header is in
# /usr/include/<triplet>/blis-openmp/, while /usr/include/<triplet>/cblas.h is whichever BLAS the
# alternatives chose (usually OpenBLAS's).
set(pretext_cblas_hints)
foreach(lib ${BLAS_LIBRARIES})
  if(NOT IS_ABSOLUTE "${lib}")
    continue()
  endif()
  get_filename_component(real "${lib}" REALPATH)
  foreach(dir_of "${real}" "${lib}")
    get_filename_component(dir "${dir_of}" DIRECTORY)
    string(REGEX REPLACE "/lib(64)?/" "/include/" mirrored "${dir}/")
    if(NOT mirrored STREQUAL "${dir}/")
      list(APPEND pretext_cblas_hints "${mirrored}")
    endif()
    list(APPEND pretext_cblas_hints "${dir}/../include" "${dir}/../../include")
  endforeach()
endforeach()
list(REMOVE_DUPLICATES pretext_cblas_hints)
set(pretext_cblas_header cblas.h)
set(pretext_cblas_suffixes)
if(pretext_blas_vendor STREQUAL "openblas")
  set(pretext_cblas_suffixes openblas-pthread openblas openblas-openmp openblas-serial
      x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-pthread)
elseif(pretext_blas_vendor STREQUAL "flexiblas")
  set(pretext_cblas_suffixes flexiblas)
elseif(pretext_blas_vendor STREQUAL "mkl")
  set(pretext_cblas_header mkl_cblas.h)
  list(APPEND pretext_cblas_hints $ENV{MKLROOT}/include)
elseif(pretext_blas_vendor STREQUAL "blis")
  set(pretext_cblas_suffixes blis x86_64-linux-gnu/blis aarch64-linux-gnu/blis
      x86_64-linux-gnu/blis-openmp x86_64-linux-gnu/blis-pthread x86_64-linux-gnu/blis-serial
      aarch64-linux-gnu/blis-openmp aarch64-linux-gnu/blis-pthread aarch64-linux-gnu/blis-serial)
endif()
find_path(PRETEXT_CBLAS_INCLUDE_DIR ${pretext_cblas_header} HINTS ${pretext_cblas_hints}
          PATH_SUFFIXES ${pretext_cblas_suffixes} NO_CACHE)
if(NOT PRETEXT_CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "found the BLAS libraries (${BLAS_LIBRARIES}) but not their ${pretext_cblas_header}: "
                      "set CMAKE_PREFIX_PATH or CMAKE_INCLUDE_PATH to its folder")
endif()
set(PRETEXT_BLAS_LIBRARIES ${BLAS_LIBRARIES})
# The reference BLAS keeps its CBLAS in a library of its own.
if(pretext_blas_vendor STREQUAL "generic")
  find_library(PRETEXT_CBLAS_LIBRARY cblas)
  if(PRETEXT_CBLAS_LIBRARY)
    list(APPEND PRETEXT_BLAS_LIBRARIES ${PRETEXT_CBLAS_LIBRARY})
  endif()
endif()
string(TOUPPER "${pretext_blas_vendor}" pretext_blas_upper)
set(PRETEXT_BLAS_DEFINITIONS PRETEXT_BLAS_VENDOR="${pretext_blas_vendor}" PRETEXT_BLAS_${pretext_blas_upper})
# BLIS's cblas.h includes all of blis.h, which needs POSIX 2001 (pthread_barrier_t) and is not
# visible under plain -std=c11; pretext's sources that ask for POSIX ask for this same value.
if(pretext_blas_vendor STREQUAL "blis")
  list(APPEND PRETEXT_BLAS_DEFINITIONS _POSIX_C_SOURCE=200809L)
endif()
# The libraries and the header folder as one target, the folder as a system one: a vendor's header
# (BLIS's defines static functions it does not use) must not raise warnings in pretext's sources.
if(NOT TARGET pretext_blas)
  add_library(pretext_blas INTERFACE)
  target_include_directories(pretext_blas SYSTEM INTERFACE ${PRETEXT_CBLAS_INCLUDE_DIR})
  target_link_libraries(pretext_blas INTERFACE ${PRETEXT_BLAS_LIBRARIES})
endif()
message(STATUS "pretext: BLAS ${pretext_blas_vendor}: ${PRETEXT_BLAS_LIBRARIES}; ${pretext_cblas_header} in ${PRETEXT_CBLAS_INCLUDE_DIR}")
set(PRETEXT_BLAS_LIBRARIES pretext_blas)
