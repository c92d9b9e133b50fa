include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS spindle spindle_runtime spindle_sync spindle_net EXPORT spindleTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/ runtime/include/ sync/include/ net/include/ ${PROJECT_BINARY_DIR}/generated/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# pkg-config (relocatable): `pkg-config --cflags --libs spindle`.
if(SPINDLE_USE_MIMALLOC)
  set(SPINDLE_PC_EXTRA_LIBS " -lmimalloc")
else()
  set(SPINDLE_PC_EXTRA_LIBS "")
endif()
configure_file(cmake/spindle.pc.in ${PROJECT_BINARY_DIR}/spindle.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/spindle.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(EXPORT spindleTargets NAMESPACE spindle:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
if(TARGET spindle_testing)
  install(TARGETS spindle_testing EXPORT spindleTestingTargets)
  install(DIRECTORY testing/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT spindleTestingTargets NAMESPACE spindle:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
endif()

configure_package_config_file(cmake/spindleConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/spindleConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/spindleConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/spindleConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/spindleConfigVersion.cmake
              cmake/SpindleCompilerProbes.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/spindle)
install(FILES cmake/probes/await_capture.cpp DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/spindle/probes)

# ThreadSanitizer suppressions for third-party code inside spindle (each with its
# reason): a user's TSAN_OPTIONS=suppressions=<prefix>/share/spindle/tsan.supp.
install(FILES tests/sanitizers/tsan.supp DESTINATION ${CMAKE_INSTALL_DATADIR}/spindle)

# ── Debian package: `cpack -G DEB` in a build tree (tests: install.deb) ──
# One development package, as Debian ships header-and-static-library libraries
# (libconcurrentqueue-dev, libmimalloc-dev): headers, the static libraries, the CMake
# package, spindle.pc and share/spindle. Its dependencies are the -dev packages a
# consumer's build needs.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "libspindle-dev")
set(CPACK_PACKAGE_VENDOR "spindle")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "spindle developers <spindle@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libconcurrentqueue-dev")
if(SPINDLE_USE_MIMALLOC)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libmimalloc-dev")
endif()
include(CPack)
