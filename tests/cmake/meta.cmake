# Meta checkpoints (.pth) and GGUF import: end-to-end runs of the CLIs. The
# gtest suites (tools/convert/meta_convert_test.cpp, pth_reader_test.cpp,
# gguf_convert_test.cpp) are registered by tests/CMakeLists.txt; their
# Malformed*/Truncated*/Fuzz* cases carry the "asan" label from there.
#   meta.gguf_stories260K_convert   stories260K.gguf -> f32 lamina (fixture)
#   meta.gguf_stories260K_greedy    llama-run greedy text = run.c's reference text
#   meta.bad_pth_archive            a garbage consolidated.00.pth: clean error, no crash
if(TARGET lamina-convert)
  set(_meta_out ${PROJECT_BINARY_DIR}/testdata/meta_cli)
  file(MAKE_DIRECTORY ${_meta_out}/bad_pth)
  set(_meta_p "${LAMINA_TEST_PREFIX}meta")

  set(_stories ${LAMINA_SHARED_DIR}/models/stories260K/stories260K.gguf)
  if(EXISTS ${_stories})
    add_test(NAME ${_meta_p}.gguf_stories260K_convert
             COMMAND lamina-convert ${_stories} --weights f32 -o ${_meta_out}/stories_gguf.lamina)
    set_tests_properties(${_meta_p}.gguf_stories260K_convert PROPERTIES
      FIXTURES_SETUP meta_stories_gguf TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}"
      PASS_REGULAR_EXPRESSION "GGUF v3: 0 Q4_0 linears .*tensors: 48 f32")
    if(TARGET llama-run)
      add_test(NAME ${_meta_p}.gguf_stories260K_greedy
               COMMAND llama-run -m ${_meta_out}/stories_gguf.lamina -p "Once upon a time"
                       -n 48 --temp 0 -t 1 --kv f32)
      set_tests_properties(${_meta_p}.gguf_stories260K_greedy PROPERTIES
        FIXTURES_REQUIRED meta_stories_gguf TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}"
        PASS_REGULAR_EXPRESSION
          "there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.")
    endif()
  endif()

  file(WRITE ${_meta_out}/bad_pth/params.json
       "{\"dim\": 64, \"n_layers\": 1, \"n_heads\": 4, \"vocab_size\": 32}\n")
  file(WRITE ${_meta_out}/bad_pth/consolidated.00.pth "PK this is not a zip archive")
  add_test(NAME ${_meta_p}.bad_pth_archive
           COMMAND lamina-convert ${_meta_out}/bad_pth -o ${_meta_out}/never.lamina)
  set_tests_properties(${_meta_p}.bad_pth_archive PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL};asan"
    PASS_REGULAR_EXPRESSION "consolidated.00.pth: no zip end-of-central-directory record")
endif()
