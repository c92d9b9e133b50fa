# ctest driver (install.deb): `cpack -G DEB` packs the build tree; the .deb is unpacked
# into a scratch root (dpkg-deb -x: no root rights needed, nothing touches the system)
# and consumers are built against it, with find_package and with pkg-config, and run.
# Inputs: BUILD_DIR, SOURCE_DIR (tests/install), WORK_DIR, BUILD_TYPE.

include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")  # step(), pkgconfig_consumer()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
step("cpack" ${CMAKE_CPACK_COMMAND} -G DEB --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/pkg")
file(GLOB deb "${WORK_DIR}/pkg/*.deb")
list(LENGTH deb n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "cpack made ${n} .deb files: ${deb}")
endif()
step("dpkg-deb --info" dpkg-deb --info "${deb}")
foreach(field IN ITEMS "Package: libspindle-dev" "Depends: libconcurrentqueue-dev")
  string(FIND "${step_out}" "${field}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the .deb's control lacks \"${field}\":\n${step_out}")
  endif()
endforeach()
step("dpkg-deb --extract" dpkg-deb -x "${deb}" "${WORK_DIR}/root")
set(prefix "${WORK_DIR}/root/usr")
foreach(f IN ITEMS "include/spindle/spindle.hpp" "share/spindle/tsan.supp")
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "the .deb does not install /usr/${f}")
  endif()
endforeach()

step("consumer configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/consumer" -B "${WORK_DIR}/build"
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
step("consumer build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
step("consumer run" "${WORK_DIR}/build/consumer")
message(STATUS "find_package consumer against the .deb: ${step_out}")

pkgconfig_consumer("the .deb" "${prefix}" "${WORK_DIR}/make" "")
