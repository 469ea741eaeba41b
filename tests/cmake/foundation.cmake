# Foundation: the installed package works for an outside project (host builds).
# consumer.find_package: find_package(lamina) -> lamina::lamina
# consumer.pkg_config:   pkg-config lamina (and its --libs name no external library)
# consumer.plain:        a C program linked with liblamina.a -lstdc++ -lpthread -lm only
# liblamina.self_contained: nm of liblamina.a: no undefined sentencepiece / protobuf /
#                        JSON symbol, and no importer or JSON code inside (every build)
if(NOT CMAKE_CROSSCOMPILING AND EXISTS ${PROJECT_SOURCE_DIR}/include/lamina/lamina.h)
  set(_lamina_consumer_link "")
  if(LAMINA_SANITIZE)
    set(_lamina_consumer_link "-fsanitize=address,undefined")
  endif()
  foreach(mode find_package pkg_config plain)
    add_test(NAME consumer.${mode}
      COMMAND ${CMAKE_COMMAND} -DLAMINA_BUILD=${PROJECT_BINARY_DIR}
              -DWORK=${PROJECT_BINARY_DIR}/consumer/${mode} -DMODE=${mode}
              -DGENERATOR=${CMAKE_GENERATOR} -DC_COMPILER=${CMAKE_C_COMPILER}
              -DLINK_FLAGS=${_lamina_consumer_link} -DEXPECT_VERSION=${PROJECT_VERSION}
              -P ${PROJECT_SOURCE_DIR}/tests/consumer/check.cmake)
    set_tests_properties(consumer.${mode} PROPERTIES TIMEOUT 300 LABELS "install;host")
  endforeach()
elseif(NOT CMAKE_CROSSCOMPILING)
  message(STATUS "lamina: include/lamina/lamina.h not there yet: consumer tests not registered")
endif()

if(CMAKE_NM)
  add_test(NAME liblamina.self_contained
    COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DLIB=$<TARGET_FILE:lamina>
            -P ${PROJECT_SOURCE_DIR}/tests/consumer/check_symbols.cmake)
  set_tests_properties(liblamina.self_contained PROPERTIES
    TIMEOUT 300 LABELS "install;${LAMINA_TEST_LABEL}")
endif()
