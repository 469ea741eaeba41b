# Engine: the C API exercised from a C99 program that includes only
# <lamina/lamina.h> (tests/capi_test.c), on a synthetic model that
# lamina-convert writes first (ctest fixture).
if(TARGET lamina-convert)
  add_executable(lamina_capi_test ${PROJECT_SOURCE_DIR}/tests/capi_test.c)
  set_target_properties(lamina_capi_test PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
                                                    C_EXTENSIONS OFF LINKER_LANGUAGE CXX)
  target_link_libraries(lamina_capi_test PRIVATE lamina m)
  lamina_target_warnings(lamina_capi_test)
  set(_capi_model ${PROJECT_BINARY_DIR}/engine_capi_tiny.lamina)
  add_test(NAME ${LAMINA_TEST_PREFIX}engine.capi_model
           COMMAND lamina-convert --synthetic tiny
                   --seed 3 --quiet -o ${_capi_model})
  set_tests_properties(${LAMINA_TEST_PREFIX}engine.capi_model PROPERTIES
    FIXTURES_SETUP engine_capi_model LABELS "unit;${LAMINA_TEST_LABEL}" TIMEOUT 300)
  add_test(NAME ${LAMINA_TEST_PREFIX}engine.capi_c99
           COMMAND lamina_capi_test ${_capi_model})
  set_tests_properties(${LAMINA_TEST_PREFIX}engine.capi_c99 PROPERTIES
    FIXTURES_REQUIRED engine_capi_model LABELS "unit;${LAMINA_TEST_LABEL}" TIMEOUT 300)
endif()
