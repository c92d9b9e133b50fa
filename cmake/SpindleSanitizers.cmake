# SPINDLE_SANITIZE=thread | address. Applied to everything built in this tree.
if(SPINDLE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -g -O1)
  add_link_options(-fsanitize=thread)
  # Everything here is instrumented, so the biased lock's TSan annotations (for a user's
  # TSan build against an uninstrumented library) are left out: they would hide a broken
  # release/acquire pair of the lock from TSan (runtime/detail/biased_lock.hpp, B3).
  add_compile_definitions(SPINDLE_DETAIL_TSAN_WHOLE_TREE=1)
elseif(SPINDLE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(SPINDLE_SANITIZE)
  message(FATAL_ERROR "SPINDLE_SANITIZE must be empty, 'thread' or 'address' (got '${SPINDLE_SANITIZE}')")
endif()
