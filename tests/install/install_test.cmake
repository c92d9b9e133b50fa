# ctest driver: install the build tree into a fresh prefix, then configure, build and
# run consumer projects against it: find_package(spindle CONFIG REQUIRED), make with
# pkg-config, <spindle/testing.hpp>, and (Release install only) a user program built
# with -fsanitize=thread and with -fsanitize=address,undefined that must run clean.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, BUILD_TYPE, CXX_FLAGS, LINK_FLAGS, LTO (the
# install was built with SPINDLE_LTO: fat LTO objects).

include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")  # step(), pkgconfig_consumer()

# Configures a CMake consumer project against the install (step_out/step_err: its output).
function(configure_consumer what src build)
  step("${what} configure" ${CMAKE_COMMAND} -S "${src}" -B "${build}" -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
       -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_CXX_FLAGS=${CXX_FLAGS} -DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS})
  set(step_out "${step_out}" PARENT_SCOPE)
  set(step_err "${step_err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
if(NOT EXISTS "${WORK_DIR}/prefix/share/spindle/tsan.supp")
  message(FATAL_ERROR "the install has no share/spindle/tsan.supp")
endif()

configure_consumer("consumer" "${SOURCE_DIR}" "${WORK_DIR}/build")
# find_package(spindle) probes the compiler for the GCC 12 co_await capture bug (issue
# 14): it must have run, and warned exactly when the probe found the bug.
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" probe REGEX "^SPINDLE_AWAIT_CAPTURE_OK:")
if(NOT probe)
  message(FATAL_ERROR "find_package(spindle) did not probe the compiler (no SPINDLE_AWAIT_CAPTURE_OK)")
endif()
string(FIND "${step_err}" "miscompiles a lambda" warned)
if(probe MATCHES "=OFF$" AND warned EQUAL -1)
  message(FATAL_ERROR "the compiler has the co_await capture bug, but find_package(spindle) did not warn:\n${step_err}")
elseif(probe MATCHES "=ON$" AND NOT warned EQUAL -1)
  message(FATAL_ERROR "find_package(spindle) warned although the probe passed:\n${step_err}")
endif()
message(STATUS "co_await capture probe: ${probe}")
step("consumer build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
step("consumer run" "${WORK_DIR}/build/consumer")
message(STATUS "${step_out}")

# The same program built by make with pkg-config (no CMake), against spindle.pc.
pkgconfig_consumer("install" "${WORK_DIR}/prefix" "${WORK_DIR}/make" "${CXX_FLAGS}")

# <spindle/testing.hpp> from the install: a user's coroutine tests (if GoogleTest is there).
if(EXISTS "${WORK_DIR}/prefix/include/spindle/testing.hpp")
  configure_consumer("testing consumer" "${SOURCE_DIR}/../consumer_testing" "${WORK_DIR}/build-testing")
  step("testing consumer build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build-testing")
  set(bin "${WORK_DIR}/build-testing/user_tests")
  step("the passing user tests" "${bin}" --gtest_filter=Passing.*)
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

# A user's sanitized build against this (uninstrumented) install: only
# -fsanitize=thread, or -fsanitize=address,undefined, in CMAKE_CXX_FLAGS (issue 17).
# A cross-worker program with wait_for, cancellation, Queue producers and every
# primitive must run with zero reports. Only when the install under test is not
# itself sanitized (the Release variant of .ci/run): that is the user's case.
# An install built with SPINDLE_LTO carries LTO IR, which GCC's linker plugin would
# compile at the application's link with its -fsanitize flags (a half-instrumented
# library): such an application links with -fno-lto, and gets the fat objects' plain
# code, the code of the default install (README).
if(CXX_FLAGS STREQUAL "")
  set(no_lto "")
  if(LTO)
    set(no_lto " -fno-lto")
  endif()
  foreach(san IN ITEMS "thread" "address,undefined")
    string(REPLACE "," "-" tag "${san}")
    set(build "${WORK_DIR}/build-sanitized-${tag}")
    step("${san} consumer configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/../consumer_sanitized" -B "${build}"
         -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
         "-DCMAKE_CXX_FLAGS=-fsanitize=${san}${no_lto}" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${san}${no_lto}")
    step("${san} consumer build" ${CMAKE_COMMAND} --build "${build}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E env
                            "TSAN_OPTIONS=suppressions=${WORK_DIR}/prefix/share/spindle/tsan.supp exitcode=66"
                            "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
                            "${build}/sanitized_consumer"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    string(FIND "${out}${err}" "ThreadSanitizer" tsan_at)
    string(FIND "${out}${err}" "AddressSanitizer" asan_at)
    string(FIND "${out}${err}" "runtime error" ubsan_at)
    if(rc OR NOT tsan_at EQUAL -1 OR NOT asan_at EQUAL -1 OR NOT ubsan_at EQUAL -1)
      message(FATAL_ERROR "the -fsanitize=${san} consumer must run clean (rc ${rc}):\n${out}\n${err}")
    endif()
    message(STATUS "-fsanitize=${san} consumer against the Release install: 0 reports")
  endforeach()
endif()
