# Installation extras and the Debian package (docs/packaging.md).
#
# `cmake --install` puts the binary in <prefix>/bin (plugin/CMakeLists.txt), the
# man page in <prefix>/share/man/man1 and the license in
# <prefix>/share/doc/session-manager-plugin. With SSM_DEB_LAYOUT=ON (what
# scripts/package uses) the install adds the Debian copyright file and the
# package gets maintainer scripts that link the plugin into /usr/local/bin (so
# the AWS CLI finds it on PATH) and the man page where man(1) looks.

include(GNUInstallDirs)

option(SSM_DEB_LAYOUT "Debian copyright file and PATH/man link maintainer scripts (for the .deb)" OFF)
set(SSM_DEB_BIN_LINK_DIR "/usr/local/bin" CACHE PATH "Where SSM_DEB_LAYOUT puts the PATH symlink")
set(SSM_DEB_MAN_LINK_DIR "/usr/local/share/man/man1" CACHE PATH "Where SSM_DEB_LAYOUT puts the man page link")

set(SSM_PKG_NAME "session-manager-plugin")
set(SSM_MAN_SRC "${PROJECT_SOURCE_DIR}/docs/session-manager-plugin.1")
set(SSM_MAN_DEST "${CMAKE_INSTALL_MANDIR}/man1")
set(SSM_DOC_DEST "${CMAKE_INSTALL_DATAROOTDIR}/doc/${SSM_PKG_NAME}")

# ---- man page: the .TH line gets SSM_PLUGIN_VERSION, then gzip -9n ----------
# (-n: no timestamp, so the package is reproducible; Debian wants man pages gzipped)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${SSM_MAN_SRC}")
file(READ "${SSM_MAN_SRC}" SSM_MAN_TEXT)
string(REGEX REPLACE "\"session-manager-plugin [0-9.]+\"" "\"session-manager-plugin ${SSM_PLUGIN_VERSION}\""
       SSM_MAN_TEXT "${SSM_MAN_TEXT}")
set(SSM_MAN_PLAIN "${CMAKE_BINARY_DIR}/docs/session-manager-plugin.1")
file(CONFIGURE OUTPUT "${SSM_MAN_PLAIN}" CONTENT "${SSM_MAN_TEXT}" @ONLY)
find_program(SSM_GZIP gzip)
if(SSM_GZIP)
  set(SSM_MAN_BUILT "${SSM_MAN_PLAIN}.gz")
  add_custom_command(OUTPUT "${SSM_MAN_BUILT}"
    COMMAND ${SSM_GZIP} -9nf "${SSM_MAN_PLAIN}" -c > "${SSM_MAN_BUILT}"
    DEPENDS "${SSM_MAN_PLAIN}")
  add_custom_target(ssm_man ALL DEPENDS "${SSM_MAN_BUILT}")
else()
  set(SSM_MAN_BUILT "${SSM_MAN_PLAIN}")
endif()
get_filename_component(SSM_MAN_NAME "${SSM_MAN_BUILT}" NAME)
install(FILES "${SSM_MAN_BUILT}" DESTINATION "${SSM_MAN_DEST}")
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${SSM_DOC_DEST}")

# ---- outside the prefix (Debian layout only) --------------------------------
if(SSM_DEB_LAYOUT)
  if(NOT IS_ABSOLUTE "${CMAKE_INSTALL_PREFIX}")
    message(FATAL_ERROR "SSM_DEB_LAYOUT needs an absolute CMAKE_INSTALL_PREFIX")
  endif()
  install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "/usr/share/doc/${SSM_PKG_NAME}"
          RENAME copyright)
  # Relative link targets, so the links also resolve inside a dpkg -x root.
  file(RELATIVE_PATH SSM_BIN_LINK_TARGET "${SSM_DEB_BIN_LINK_DIR}"
       "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/${SSM_PKG_NAME}")
  file(RELATIVE_PATH SSM_MAN_LINK_TARGET "${SSM_DEB_MAN_LINK_DIR}"
       "${CMAKE_INSTALL_PREFIX}/${SSM_MAN_DEST}/${SSM_MAN_NAME}")
  set(SSM_BIN_LINK "${SSM_DEB_BIN_LINK_DIR}/${SSM_PKG_NAME}")
  set(SSM_MAN_LINK "${SSM_DEB_MAN_LINK_DIR}/${SSM_MAN_NAME}")
endif()

# ---- CPack: one DEB package ---------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "${SSM_PKG_NAME}")
set(CPACK_PACKAGE_VERSION "${SSM_PLUGIN_VERSION}")
set(CPACK_PACKAGE_VENDOR "session-manager-plugin C port")
set(CPACK_PACKAGE_CONTACT "session-manager-plugin maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "AWS Systems Manager Session Manager plugin for the AWS CLI (C implementation)")
set(CPACK_PACKAGE_DESCRIPTION
    "Drop-in replacement for the session-manager-plugin program that `aws ssm start-session` runs.\nIt carries interactive shells, commands and port forwarding over the Session Manager\nwebsocket data channel. Installs /usr/local/sessionmanagerplugin/bin/session-manager-plugin\nlike the official package, with a /usr/local/bin symlink.")
if(SSM_STATIC)
  string(APPEND CPACK_PACKAGE_DESCRIPTION "\nThis build is statically linked: it needs no shared libraries.")
endif()
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
# Absolute destinations (the links) must land in the staging root, never on
# the build machine: DESTDIR staging keeps CMAKE_INSTALL_PREFIX as it is.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html")
# Debian has no License field; the license ships as the copyright file above.
find_program(SSM_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(SSM_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
elseif(NOT SSM_STATIC)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libwebsockets17, libssl3, libcjson1, libuuid1")
endif()
# TLS to AWS needs the system's CA store (OpenSSL's default paths, /usr/lib/ssl).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
# The PATH and man links are made by postinst and removed by prerm, as the
# official package does, instead of being shipped: a package that ships
# /usr/local/bin/x also lists /usr/local/bin, and dpkg would delete that
# directory (made by base-files, owned by nobody) on removal when it is empty.
# postinst also repairs the link after an upgrade from the official package,
# whose old postrm deletes it after our files are unpacked.
if(SSM_DEB_LAYOUT)
  set(SSM_DEB_SCRIPTS "${CMAKE_BINARY_DIR}/deb-scripts")
  file(WRITE "${SSM_DEB_SCRIPTS}/postinst"
"#!/bin/sh
# Put session-manager-plugin on PATH and its man page where man(1) looks.
set -e
link() {
    if [ -L \"$2\" ] && [ \"$(readlink \"$2\")\" = \"$1\" ]; then
        return 0
    fi
    # A stale link or another copy: replace it, as the official package does.
    if [ -e \"$2\" ] || [ -L \"$2\" ]; then
        rm -f \"$2\"
    fi
    mkdir -p \"$(dirname \"$2\")\"
    ln -s \"$1\" \"$2\"
}
case \"$1\" in
configure|abort-upgrade|abort-remove|abort-deconfigure)
    link '${SSM_BIN_LINK_TARGET}' '${SSM_BIN_LINK}'
    link '${SSM_MAN_LINK_TARGET}' '${SSM_MAN_LINK}'
    ;;
esac
exit 0
")
  file(WRITE "${SSM_DEB_SCRIPTS}/prerm"
"#!/bin/sh
# Remove the links postinst made, and only those (an upgrade keeps them).
set -e
unlink_ours() {
    if [ -L \"$2\" ] && [ \"$(readlink \"$2\")\" = \"$1\" ]; then
        rm -f \"$2\"
    fi
}
case \"$1\" in
remove|deconfigure)
    unlink_ours '${SSM_BIN_LINK_TARGET}' '${SSM_BIN_LINK}'
    unlink_ours '${SSM_MAN_LINK_TARGET}' '${SSM_MAN_LINK}'
    ;;
esac
exit 0
")
  foreach(script postinst prerm)
    file(CHMOD "${SSM_DEB_SCRIPTS}/${script}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
         GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${SSM_DEB_SCRIPTS}/postinst;${SSM_DEB_SCRIPTS}/prerm")
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endif()

include(CPack)
