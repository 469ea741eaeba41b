# Kernel tests under the QEMU CPU matrix (cross builds only): each run checks
# that exactly the expected tiers are available there (LAMINA_EXPECT_TIERS),
# so every tier is tested where the higher ones are really absent, and the SVE
# kernels at 128/256/512-bit vectors; LAMINA_EXPECT_AUTO is the tier "auto"
# must pick there (kernels/dispatch.cpp AutoTier).
if(TARGET lamina_kernel_tests AND CMAKE_CROSSCOMPILING AND LAMINA_ARM64)
  set(_lamina_kernel_cpus
      "max|ref,neon,dotprod,i8mm,sve|64|sve"
      "cortex-a76|ref,neon,dotprod|0|dotprod"
      "cortex-a72|ref,neon|0|neon"
      "max,sve128=on|ref,neon,dotprod,i8mm,sve|16|i8mm"
      "max,sve256=on|ref,neon,dotprod,i8mm,sve|32|sve"
      "max,sve512=on|ref,neon,dotprod,i8mm,sve|64|sve")
  foreach(entry IN LISTS _lamina_kernel_cpus)
    string(REPLACE "|" ";" parts "${entry}")
    list(GET parts 0 cpu)
    list(GET parts 1 tiers)
    list(GET parts 2 svebytes)
    list(GET parts 3 autotier)
    string(REGEX REPLACE "[^A-Za-z0-9]+" "_" tag "${cpu}")
    add_test(NAME kernels_qemu_${tag}
             COMMAND qemu-aarch64 -cpu ${cpu} $<TARGET_FILE:lamina_kernel_tests>)
    set(env "LAMINA_EXPECT_TIERS=${tiers}" "LAMINA_EXPECT_AUTO=${autotier}")
    if(NOT svebytes STREQUAL "0")
      list(APPEND env "LAMINA_EXPECT_SVE_BYTES=${svebytes}")
    endif()
    set_tests_properties(kernels_qemu_${tag} PROPERTIES ENVIRONMENT "${env}" TIMEOUT 600
                         LABELS "kernels;qemu")
  endforeach()
endif()

# Instruction-count driver for tools/insn-report.sh (not a test; built with the
# tests because bench/ only globs *_bench.cpp into lamina_bench).
if(EXISTS ${PROJECT_SOURCE_DIR}/bench/kernels_insn_driver.cpp)
  add_executable(lamina_kernels_insn ${PROJECT_SOURCE_DIR}/bench/kernels_insn_driver.cpp)
  target_include_directories(lamina_kernels_insn PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(lamina_kernels_insn PRIVATE lamina)
  lamina_target_warnings(lamina_kernels_insn)
endif()
