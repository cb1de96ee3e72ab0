# -DSSM_STATIC=ON: a session-manager-plugin with no shared-library dependencies
# (docs/packaging.md "Static build").
#
# Debian bookworm ships libwebsockets.a, libssl.a, libcrypto.a, libuuid.a,
# libcap.a and libz.a (what libwebsockets.a needs), but no libcjson.a: cJSON is
# compiled here from its Debian source package (`apt-get source cjson`), named
# by SSM_CJSON_SOURCE_DIR. glibc is linked statically too unless
# SSM_STATIC_GLIBC=OFF; its getaddrinfo then still loads the host's NSS modules
# at run time for anything beyond files/dns (see the docs).
#
# This is included after every target exists, so it swaps the imported
# dependency targets' libraries for the .a files instead of finding them again.

option(SSM_STATIC "Link libwebsockets, OpenSSL, cJSON and libuuid statically" OFF)
option(SSM_STATIC_GLIBC "With SSM_STATIC, link glibc statically as well (-static)" ON)
set(SSM_CJSON_SOURCE_DIR "" CACHE PATH
    "cJSON source tree (from `apt-get source cjson`) for SSM_STATIC, as Debian has no libcjson.a")

if(NOT SSM_STATIC)
  return()
endif()

if(SSM_SANITIZE OR SSM_FUZZ)
  message(FATAL_ERROR "SSM_STATIC cannot be combined with SSM_SANITIZE or SSM_FUZZ "
                      "(the sanitizer runtimes are shared libraries)")
endif()

# Finds lib<name>.a or stops with a message naming the Debian package.
function(ssm_static_lib var name debian_pkg)
  find_library(${var} NAMES lib${name}.a NO_CACHE)
  if(NOT ${var})
    message(FATAL_ERROR "SSM_STATIC: lib${name}.a not found; install ${debian_pkg} "
                        "(apt-get install ${debian_pkg}) or configure without -DSSM_STATIC=ON")
  endif()
  set(${var} "${${var}}" PARENT_SCOPE)
endfunction()

ssm_static_lib(SSM_A_LWS websockets libwebsockets-dev)
ssm_static_lib(SSM_A_SSL ssl libssl-dev)
ssm_static_lib(SSM_A_CRYPTO crypto libssl-dev)
ssm_static_lib(SSM_A_UUID uuid uuid-dev)
ssm_static_lib(SSM_A_CAP cap libcap-dev)
ssm_static_lib(SSM_A_Z z zlib1g-dev)

find_library(SSM_A_CJSON NAMES libcjson.a NO_CACHE)
if(SSM_A_CJSON)
  set(SSM_CJSON_STATIC "${SSM_A_CJSON}" m)
elseif(SSM_CJSON_SOURCE_DIR AND EXISTS "${SSM_CJSON_SOURCE_DIR}/cJSON.c")
  add_library(ssm_cjson_static STATIC "${SSM_CJSON_SOURCE_DIR}/cJSON.c")
  # Third-party code: keep our -Werror set away from it.
  set_property(TARGET ssm_cjson_static PROPERTY COMPILE_OPTIONS -w)
  target_link_libraries(ssm_cjson_static PUBLIC m)
  set(SSM_CJSON_STATIC ssm_cjson_static)
  message(STATUS "SSM_STATIC: cJSON compiled from ${SSM_CJSON_SOURCE_DIR}")
else()
  message(FATAL_ERROR
    "SSM_STATIC: Debian ships no libcjson.a. Fetch cJSON's Debian source (the version of the\n"
    "installed libcjson-dev, with Debian's patches) and point the build at it:\n"
    "  dir=$(scripts/package --fetch-cjson-only)\n"
    "  cmake ... -DSSM_STATIC=ON -DSSM_CJSON_SOURCE_DIR=$dir\n"
    "(or `apt-get source cjson` with a deb-src line; see docs/packaging.md). The directory must contain cJSON.c.")
endif()

find_package(Threads REQUIRED)

# OpenSSL: FindOpenSSL made UNKNOWN imported targets pointing at the .so files.
set_target_properties(OpenSSL::Crypto PROPERTIES IMPORTED_LOCATION "${SSM_A_CRYPTO}")
set_property(TARGET OpenSSL::Crypto APPEND PROPERTY INTERFACE_LINK_LIBRARIES
             ${CMAKE_DL_LIBS} Threads::Threads)
set_target_properties(OpenSSL::SSL PROPERTIES IMPORTED_LOCATION "${SSM_A_SSL}")
# libwebsockets.a as a target of its own, so CMake orders its dependencies
# (OpenSSL, libcap, zlib) after it on every link line.
add_library(ssm_lws_static STATIC IMPORTED GLOBAL)
set_target_properties(ssm_lws_static PROPERTIES IMPORTED_LOCATION "${SSM_A_LWS}")
set_property(TARGET ssm_lws_static PROPERTY INTERFACE_LINK_LIBRARIES
             OpenSSL::SSL OpenSSL::Crypto "${SSM_A_CAP}" "${SSM_A_Z}" ${CMAKE_DL_LIBS} Threads::Threads)
# pkg-config's INTERFACE targets: replace their library lists outright.
set_property(TARGET PkgConfig::LWS PROPERTY INTERFACE_LINK_LIBRARIES ssm_lws_static)
set_property(TARGET PkgConfig::CJSON PROPERTY INTERFACE_LINK_LIBRARIES ${SSM_CJSON_STATIC})
set_property(TARGET PkgConfig::UUID PROPERTY INTERFACE_LINK_LIBRARIES "${SSM_A_UUID}")

if(SSM_STATIC_GLIBC)
  # Only the shipped binary: cmocka (tests) has no .a in Debian.
  target_link_options(session-manager-plugin PRIVATE -static)
  # glibc warns that getaddrinfo/dlopen in a static program need the same glibc's
  # shared NSS/engine modules at run time; that is expected (docs/packaging.md).
endif()

# The build is only static if the result says so: no PT_INTERP, no DT_NEEDED
# (static-except-glibc: nothing but libc/libm/ld-linux).
if(SSM_TESTS)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(SSM_STATIC_CHECK [=[
import os, subprocess, sys
out = subprocess.run(["readelf", "-dl", sys.argv[1]], capture_output=True, text=True, check=True).stdout
needed = [l.split("[", 1)[1].split("]", 1)[0] for l in out.splitlines() if "(NEEDED)" in l]
if sys.argv[2] == "ON":
    bad = needed + (["PT_INTERP"] if "INTERP" in out else [])
else:
    allowed = ("libc.so", "libm.so", "ld-linux", "libpthread.so", "libdl.so", "libresolv.so")
    bad = [n for n in needed if not n.startswith(allowed)]
print("NEEDED:", needed or "none")
if bad:
    sys.exit("not static enough: %s" % bad)
]=])
  file(WRITE "${CMAKE_BINARY_DIR}/static_check.py" "${SSM_STATIC_CHECK}")
  add_test(NAME static.no_shared_deps
           COMMAND ${Python3_EXECUTABLE} "${CMAKE_BINARY_DIR}/static_check.py"
                   $<TARGET_FILE:session-manager-plugin> ${SSM_STATIC_GLIBC})
endif()
