# Shared by the install tests (install_test.cmake, deb_test.cmake).

# Runs a command; FATAL_ERROR naming `what` (with its output) unless it succeeds.
# Leaves its stdout/stderr in step_out/step_err.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "${what} failed: ${rc}\n${out}\n${err}")
  endif()
  set(step_out "${out}" PARENT_SCOPE)
  set(step_err "${err}" PARENT_SCOPE)
endfunction()

# Builds consumer/main.cpp with make and pkg-config alone (no CMake) against the
# spindle.pc found under `prefix`, into `dir`, and runs it. `flags`: extra compiler flags.
function(pkgconfig_consumer what prefix dir flags)
  file(GLOB_RECURSE pc "${prefix}/*/spindle.pc")
  if(NOT pc)
    message(FATAL_ERROR "${what}: no spindle.pc under ${prefix}")
  endif()
  get_filename_component(pcdir "${pc}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  set(here "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
  step("${what}: make + pkg-config consumer build" ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir}
       make -f "${here}/consumer_pkgconfig/Makefile" -C "${dir}"
       "SRC=${here}/consumer/main.cpp" "OUT=${dir}/consumer" "EXTRA_FLAGS=${flags}")
  step("${what}: make + pkg-config consumer run" "${dir}/consumer")
  message(STATUS "${what}, make + pkg-config consumer: ${step_out}")
endfunction()
