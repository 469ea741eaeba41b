# Format / loader / converter: end-to-end runs of the lamina-convert CLI (the
# gtest cases in loader/*_test.cpp and tools/convert/*_test.cpp are registered
# by tests/CMakeLists.txt; their Corrupt* cases carry the "asan" label).
#   lamina-convert.synthetic_tiny   --synthetic tiny -> a valid file
#   lamina-convert.stories260K_q4   llama2.c checkpoint from ../shared (skipped when absent)
#   lamina-convert.info             --info on that file: validates and describes it
#   lamina-convert.bad_input        missing input: clean error, exit 1, no crash
#   lamina-convert.bad_option       unknown option: usage, exit 2
if(TARGET lamina-convert)
  set(_fmt_out ${PROJECT_BINARY_DIR}/testdata/cli)
  file(MAKE_DIRECTORY ${_fmt_out})
  set(_fmt_p "${LAMINA_TEST_PREFIX}lamina-convert")

  add_test(NAME ${_fmt_p}.synthetic_tiny
           COMMAND lamina-convert --synthetic tiny --seed 3 -o ${_fmt_out}/tiny.lamina)
  set_tests_properties(${_fmt_p}.synthetic_tiny PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}"
    PASS_REGULAR_EXPRESSION "wrote .*tiny.lamina: .* parameters, .* bits/weight; tensors: "
    FIXTURES_SETUP fmt_tiny_model)
  add_test(NAME ${_fmt_p}.info COMMAND lamina-convert --info ${_fmt_out}/tiny.lamina)
  set_tests_properties(${_fmt_p}.info PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" FIXTURES_REQUIRED fmt_tiny_model
    PASS_REGULAR_EXPRESSION "dim 64, layers 2, heads 4, kv heads 2, head_dim 16, ffn 160, vocab 258")

  if(EXISTS ${LAMINA_SHARED_DIR}/models/stories260K/stories260K.bin)
    add_test(NAME ${_fmt_p}.stories260K_q4
             COMMAND lamina-convert ${LAMINA_SHARED_DIR}/models/stories260K/stories260K.bin
                     --weights q4 -o ${_fmt_out}/stories260K_q4.lamina)
    set_tests_properties(${_fmt_p}.stories260K_q4 PROPERTIES
      TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}"
      PASS_REGULAR_EXPRESSION "tensors: 11 f32, 1 q8c, 35 q4g")
  endif()

  add_test(NAME ${_fmt_p}.bad_input
           COMMAND lamina-convert ${_fmt_out}/does-not-exist -o ${_fmt_out}/never.lamina)
  set_tests_properties(${_fmt_p}.bad_input PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL};asan"
    PASS_REGULAR_EXPRESSION "lamina-convert: .*does-not-exist: no such file or directory")

  add_test(NAME ${_fmt_p}.bad_option
           COMMAND lamina-convert --frobnicate -o ${_fmt_out}/never.lamina)
  set_tests_properties(${_fmt_p}.bad_option PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}"
    PASS_REGULAR_EXPRESSION "unknown option --frobnicate")
endif()
