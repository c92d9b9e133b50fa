# Runs one example and compares its standard output, line by line, with the
# expected-output file. Fails on a non-zero exit code, on a difference, or when
# the program writes nothing.
#   cmake -DEXE=<program> -DEXPECTED=<file.txt> -P check_output.cmake
if(NOT EXE OR NOT EXPECTED)
  message(FATAL_ERROR "usage: cmake -DEXE=<program> -DEXPECTED=<file> -P check_output.cmake")
endif()
execute_process(COMMAND "${EXE}" OUTPUT_VARIABLE actual ERROR_VARIABLE err RESULT_VARIABLE rc)
if(err)
  message("---- stderr of ${EXE}:\n${err}")
endif()
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "${EXE} exited with ${rc}")
endif()
file(READ "${EXPECTED}" expected)
string(REPLACE "\r\n" "\n" expected "${expected}")
if(NOT actual STREQUAL expected)
  get_filename_component(name "${EXPECTED}" NAME)
  set(actual_file "${CMAKE_CURRENT_BINARY_DIR}/actual-${name}")
  file(WRITE "${actual_file}" "${actual}")
  execute_process(COMMAND diff -u "${EXPECTED}" "${actual_file}" OUTPUT_VARIABLE d)
  message(FATAL_ERROR "output differs from ${EXPECTED} (saved as ${actual_file}):\n${d}")
endif()
message("output matches ${EXPECTED}")
