# lamina-server: request parsing unit tests and HTTP tests that start the
# server as a child process on a free loopback port (under $LAMINA_EMULATOR on
# a cross build) and talk to it with httplib's client and raw sockets.
if(TARGET lamina_server)
  file(GLOB _server_tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/server/*_test.cpp)
  lamina_add_test_binary(lamina_server_tests ${_server_tests})
  target_link_libraries(lamina_server_tests PRIVATE lamina_server)
  add_dependencies(lamina_server_tests lamina-server llama-run)
  lamina_discover(lamina_server_tests unit)
endif()
