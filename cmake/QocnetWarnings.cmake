# SPDX-License-Identifier: Apache-2.0
# qocnet_warnings(target): the project's warning set, -Werror when QOCNET_WERROR.
function(qocnet_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2)
  if(QOCNET_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
