# spindle_probe_await_capture(): runs cmake/probes/await_capture.cpp (installed beside
# this file) once per build tree and caches SPINDLE_AWAIT_CAPTURE_OK. When the compiler
# miscompiles a capturing lambda written inside a co_await expression (GCC 12: the
# capture is destroyed twice — a bad free or a double free in user code such as
# `co_await cond.wait_for([key] { ... })`), it prints a warning saying what to write
# instead. Used by spindle's own build and by its CMake package (find_package).
set(_spindle_probe_dir "${CMAKE_CURRENT_LIST_DIR}")

function(spindle_probe_await_capture)
  if(DEFINED SPINDLE_AWAIT_CAPTURE_OK OR CMAKE_CROSSCOMPILING OR NOT CMAKE_CXX_COMPILER_LOADED)
    return()
  endif()
  set(_src "${_spindle_probe_dir}/probes/await_capture.cpp")
  if(NOT EXISTS "${_src}")
    return()
  endif()
  try_run(_run _compiled "${CMAKE_BINARY_DIR}/spindle_probe_await_capture" "${_src}"
          CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
          RUN_OUTPUT_VARIABLE _out)
  if(NOT _compiled)
    return()  # no C++20 coroutines here: the consumer's own build will say so
  endif()
  if(_run EQUAL 0)
    set(SPINDLE_AWAIT_CAPTURE_OK ON CACHE BOOL "spindle: the compiler handles capturing lambdas inside co_await" FORCE)
    return()
  endif()
  set(SPINDLE_AWAIT_CAPTURE_OK OFF CACHE BOOL "spindle: the compiler handles capturing lambdas inside co_await" FORCE)
  message(WARNING
    "spindle: ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} miscompiles a lambda whose by-copy "
    "captures are not trivially copyable when it is written inside a co_await expression "
    "(probe: ${_out}). Code such as\n"
    "  co_await cond.wait_for([name] { return ready(name); });   // name: std::string\n"
    "destroys the capture twice: a bad free or a double free at run time. Name the lambda first:\n"
    "  auto pred = [name] { return ready(name); };\n"
    "  co_await cond.wait_for(std::move(pred));\n"
    "or capture by reference, or use another compiler (clang is not affected). "
    "The same holds for to_thread, spawn and every other call that takes a lambda inside co_await.")
endfunction()
