# Dependencies, all from Debian packages:
#   libconcurrentqueue-dev (moodycamel, header-only), libmimalloc-dev,
#   libgtest-dev (tests), libbenchmark-dev (benchmarks).
find_package(Threads REQUIRED)

find_path(SPINDLE_CONCURRENTQUEUE_INCLUDE_DIR concurrentqueue/concurrentqueue.h
          HINTS /usr/include /usr/local/include)
if(NOT SPINDLE_CONCURRENTQUEUE_INCLUDE_DIR)
  message(FATAL_ERROR "moodycamel::ConcurrentQueue not found: apt-get install libconcurrentqueue-dev")
endif()

if(SPINDLE_USE_MIMALLOC)
  find_package(mimalloc CONFIG REQUIRED)
endif()
