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

# The same program built by make with pkg-config (no CMake), against spindle.pc.
file(GLOB_RECURSE pc "${WORK_DIR}/prefix/*/spindle.pc")
if(NOT pc)
  message(FATAL_ERROR "the install has no spindle.pc")
endif()
get_filename_component(pcdir "${pc}" DIRECTORY)
file(MAKE_DIRECTORY "${WORK_DIR}/make")
execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir}
                        make -f "${SOURCE_DIR}/../consumer_pkgconfig/Makefile" -C "${WORK_DIR}/make"
                        "SRC=${SOURCE_DIR}/main.cpp" "OUT=${WORK_DIR}/make/consumer" "EXTRA_FLAGS=${CXX_FLAGS}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "the make + pkg-config consumer did not build: ${rc}\n${out}\n${err}")
endif()
execute_process(COMMAND "${WORK_DIR}/make/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "consumer run failed: ${rc}")
endif()

# <spindle/testing.hpp> from the install: a user's coroutine tests (if GoogleTest is there).
if(EXISTS "${WORK_DIR}/prefix/include/spindle/testing.hpp")
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/../consumer_testing" -B "${WORK_DIR}/build-testing"
                          -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
                          -DCMAKE_CXX_FLAGS=${CXX_FLAGS} -DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "testing consumer configure failed: ${rc}\n${out}\n${err}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build-testing" RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "testing consumer build failed: ${rc}\n${out}\n${err}")
  endif()
  set(bin "${WORK_DIR}/build-testing/user_tests")
  execute_process(COMMAND "${bin}" --gtest_filter=Passing.* RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "the passing user tests failed: ${rc}\n${out}\n${err}")
  endif()
  foreach(t IN ITEMS "Assertion;arithmetic" "Deadlock;spindle test Failing.Deadlock deadlocked"
                    "Hang;spindle test Failing.Hang did not finish within 1s")
    list(GET t 0 name)
    list(GET t 1 expect)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env SPINDLE_TEST_DEADLINE_S=1 "${bin}" --gtest_filter=Failing.${name}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    string(FIND "${out}${err}" "${expect}" at)
    if(NOT rc OR at EQUAL -1)
      message(FATAL_ERROR "Failing.${name} must fail saying \"${expect}\" (rc ${rc}):\n${out}\n${err}")
    endif()
  endforeach()
  message(STATUS "spindle::testing consumer: passing tests pass, failing tests fail with their names")
endif()
