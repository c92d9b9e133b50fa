# ctest driver: install the build tree into a fresh prefix, then configure, build and
# run a consumer project against it with find_package(spindle CONFIG REQUIRED).
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, BUILD_TYPE.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()
if(NOT EXISTS "${WORK_DIR}/prefix/share/spindle/tsan.supp")
  message(FATAL_ERROR "the install has no share/spindle/tsan.supp")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build"
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
                        -DCMAKE_CXX_FLAGS=${CXX_FLAGS} -DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE conf_out ERROR_VARIABLE conf_err)
if(rc)
  message(FATAL_ERROR "consumer configure failed: ${rc}\n${conf_out}\n${conf_err}")
endif()
# find_package(spindle) probes the compiler for the GCC 12 co_await capture bug (issue
# 14): it must have run, and warned exactly when the probe found the bug.
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" probe REGEX "^SPINDLE_AWAIT_CAPTURE_OK:")
if(NOT probe)
  message(FATAL_ERROR "find_package(spindle) did not probe the compiler (no SPINDLE_AWAIT_CAPTURE_OK)")
endif()
string(FIND "${conf_err}" "miscompiles a lambda" warned)
if(probe MATCHES "=OFF$" AND warned EQUAL -1)
  message(FATAL_ERROR "the compiler has the co_await capture bug, but find_package(spindle) did not warn:\n${conf_err}")
elseif(probe MATCHES "=ON$" AND NOT warned EQUAL -1)
  message(FATAL_ERROR "find_package(spindle) warned although the probe passed:\n${conf_err}")
endif()
message(STATUS "co_await capture probe: ${probe}")
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumer build failed: ${rc}")
endif()
execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "consumer run failed: ${rc}")
endif()
