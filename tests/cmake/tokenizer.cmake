# Tokenizer: end-to-end runs of the lamina-tokenize CLI (the gtest cases in
# tokenizer/*_test.cpp are registered by tests/CMakeLists.txt).
#   lamina-tokenize.jsonl_vectors_<src>  every vectors.json entry through --jsonl, from
#                                        tokenizer.model and tokenizer.json (skipped
#                                        when ../shared is absent), + -p/--decode
#   lamina-tokenize.bad_option           unknown option: usage, exit 2
#   lamina-tokenize.bad_input            missing tokenizer file: clean error, exit 1
#   lamina-tokenize.lamina_{tiny,stories260K}  the tokenizer embedded in a converted
#                                        model.lamina (fixtures made by lamina-convert)
if(TARGET lamina-tokenize)
  set(_tok_p "${LAMINA_TEST_PREFIX}lamina-tokenize")
  set(_tok_dir ${LAMINA_SHARED_DIR}/tokenizers/llama3)
  if(EXISTS ${_tok_dir}/vectors.json)
    foreach(src tokenizer.model tokenizer.json)
      add_test(NAME ${_tok_p}.jsonl_vectors_${src}
               COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tokenizer/cli_check.py
                       ${_tok_dir}/vectors.json ${_tok_dir}/${src} --
                       ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:lamina-tokenize>)
      set_tests_properties(${_tok_p}.jsonl_vectors_${src} PROPERTIES
        TIMEOUT 600 LABELS "unit;${LAMINA_TEST_LABEL}"
        PASS_REGULAR_EXPRESSION "--jsonl: 408 / 408 vectors match.*lamina-tokenize CLI OK")
    endforeach()
  endif()
  add_test(NAME ${_tok_p}.bad_option COMMAND lamina-tokenize --frobnicate)
  set_tests_properties(${_tok_p}.bad_option PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" WILL_FAIL FALSE
    PASS_REGULAR_EXPRESSION "unknown argument '--frobnicate'")
  add_test(NAME ${_tok_p}.bad_input
           COMMAND lamina-tokenize --tokenizer ${PROJECT_BINARY_DIR}/does-not-exist -p x)
  set_tests_properties(${_tok_p}.bad_input PROPERTIES
    TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL};asan"
    PASS_REGULAR_EXPRESSION "lamina-tokenize: .*does-not-exist: cannot open")

  if(TARGET lamina-convert)
    set(_tok_out ${PROJECT_BINARY_DIR}/testdata/tokenizer-cli)
    file(MAKE_DIRECTORY ${_tok_out})
    add_test(NAME ${_tok_p}.make_tiny
             COMMAND lamina-convert --synthetic tiny --seed 3 -o ${_tok_out}/tiny.lamina)
    set_tests_properties(${_tok_p}.make_tiny PROPERTIES
      TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" FIXTURES_SETUP tok_tiny)
    add_test(NAME ${_tok_p}.lamina_tiny
             COMMAND lamina-tokenize --tokenizer ${_tok_out}/tiny.lamina -p hi --bos)
    set_tests_properties(${_tok_p}.lamina_tiny PROPERTIES
      TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" FIXTURES_REQUIRED tok_tiny
      PASS_REGULAR_EXPRESSION "^256,104,105\n$")
    set(_stories ${LAMINA_SHARED_DIR}/models/stories260K)
    if(EXISTS ${_stories}/stories260K.bin AND EXISTS ${_stories}/tok512.bin)
      add_test(NAME ${_tok_p}.make_stories260K
               COMMAND lamina-convert ${_stories}/stories260K.bin --weights q4
                       -o ${_tok_out}/stories260K.lamina)
      set_tests_properties(${_tok_p}.make_stories260K PROPERTIES
        TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" FIXTURES_SETUP tok_stories)
      # Same ids as tok512.bin itself (llama2.c run.c encoding, BOS 1).
      add_test(NAME ${_tok_p}.lamina_stories260K
               COMMAND lamina-tokenize --tokenizer ${_tok_out}/stories260K.lamina
                       -p "Once upon a time" --bos)
      set_tests_properties(${_tok_p}.lamina_stories260K PROPERTIES
        TIMEOUT 300 LABELS "unit;${LAMINA_TEST_LABEL}" FIXTURES_REQUIRED tok_stories
        PASS_REGULAR_EXPRESSION "^1,403,407,261,378\n$")
    endif()
  endif()
endif()
