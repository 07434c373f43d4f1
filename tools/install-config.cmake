# install-config.cmake - run by `cmake --install` (see CMakeLists.txt): writes the systemd unit
# and the default config with the paths of this install. CMAKE_INSTALL_PREFIX is the prefix given
# at install time; DESTDIR is honoured. An existing config is never overwritten.
cmake_policy(VERSION 3.20)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(ALLOT_SYSCONFDIR "/etc")
  set(allot_unit_dir "/usr/lib/systemd/system")
else()
  set(ALLOT_SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
  set(allot_unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(ALLOT_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(ALLOT_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/allot")

function(allot_install_template source destination mode keep_existing)
  set(target "$ENV{DESTDIR}${destination}")
  if(keep_existing AND EXISTS "${target}")
    message(STATUS "Keeping: ${target}")
    return()
  endif()
  file(READ "${source}" text)
  string(REPLACE "@ALLOT_BINDIR@" "${ALLOT_BINDIR}" text "${text}")
  string(REPLACE "@ALLOT_SYSCONFDIR@" "${ALLOT_SYSCONFDIR}" text "${text}")
  string(REPLACE "@ALLOT_DOCDIR@" "${ALLOT_DOCDIR}" text "${text}")
  get_filename_component(dir "${target}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  file(WRITE "${target}" "${text}")
  file(CHMOD "${target}" PERMISSIONS ${mode})
  message(STATUS "Installing: ${target}")
endfunction()

allot_install_template("${ALLOT_SOURCE_DIR}/tools/allotd.service.in"
                       "${allot_unit_dir}/allotd.service" "OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ" FALSE)
allot_install_template("${ALLOT_SOURCE_DIR}/tools/allotd.conf"
                       "${ALLOT_SYSCONFDIR}/allot/allotd.conf" "OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ" TRUE)
