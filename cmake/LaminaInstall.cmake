# Install rules: liblamina.a + public headers (component "dev"), the CMake
# package (find_package(lamina) -> lamina::lamina) and lamina.pc.
include(CMakePackageConfigHelpers)

set(LAMINA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/lamina)
install(TARGETS lamina EXPORT laminaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/lamina
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT laminaTargets NAMESPACE lamina:: FILE lamina-targets.cmake
        DESTINATION ${LAMINA_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lamina-config.cmake.in
  ${PROJECT_BINARY_DIR}/lamina-config.cmake INSTALL_DESTINATION ${LAMINA_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lamina-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lamina-config.cmake
              ${PROJECT_BINARY_DIR}/lamina-config-version.cmake
        DESTINATION ${LAMINA_CMAKE_DIR} COMPONENT dev)

# pkg-config: liblamina.a is static, so Libs carries its dependencies for a
# plain C link: the C++ runtime, libm, pthread (no external library).
set(LAMINA_PC_DEPS " -lstdc++ -lm -pthread")
file(RELATIVE_PATH LAMINA_PC_UP /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" LAMINA_PC_UP "${LAMINA_PC_UP}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/lamina.pc.in ${PROJECT_BINARY_DIR}/lamina.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lamina.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
