# x86-64 host builds: the library stays baseline x86-64 — AVX instructions
# only inside the x86 kernel tiers (tests/check_baseline_isa.sh), so one
# binary runs on any x86-64 CPU and never raises SIGILL.
if(LAMINA_X86_64 AND NOT CMAKE_CROSSCOMPILING AND TARGET llama-run AND TARGET lamina_tests)
  add_test(NAME kernels.x86_baseline_isa
           COMMAND sh ${PROJECT_SOURCE_DIR}/tests/check_baseline_isa.sh
                   $<TARGET_FILE:llama-run> $<TARGET_FILE:lamina_tests>)
  set_tests_properties(kernels.x86_baseline_isa PROPERTIES LABELS "kernels;host" TIMEOUT 300)
endif()
