# Foundation: the installed package works for an outside project (host builds).
# consumer.find_package: find_package(lamina) -> lamina::lamina
# consumer.pkg_config:   pkg-config lamina
if(NOT CMAKE_CROSSCOMPILING AND EXISTS ${PROJECT_SOURCE_DIR}/include/lamina/lamina.h)
  set(_lamina_consumer_link "")
  if(LAMINA_SANITIZE)
    set(_lamina_consumer_link "-fsanitize=address,undefined")
  endif()
  foreach(mode find_package pkg_config)
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
