# Warnings live on a private target: never leaked to users of spindle.
add_library(spindle_warnings INTERFACE)
target_compile_options(spindle_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wno-interference-size)
