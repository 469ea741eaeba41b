# cmake -P check.cmake: install a lamina build tree to a scratch prefix, then
# configure, build and run tests/consumer against it.
#   -DLAMINA_BUILD=<lamina build dir> -DWORK=<scratch dir> -DMODE=find_package|pkg_config|plain
#   -DGENERATOR=... -DC_COMPILER=... -DLINK_FLAGS=... -DEXPECT_VERSION=x.y.z
foreach(v LAMINA_BUILD WORK MODE GENERATOR C_COMPILER EXPECT_VERSION)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check.cmake: -D${v}=... missing")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(RUN_OUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})
run("install" ${CMAKE_COMMAND} --install ${LAMINA_BUILD} --prefix ${prefix} --component dev)

set(args -S ${CMAKE_CURRENT_LIST_DIR} -B ${WORK}/build -G ${GENERATOR}
         -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_BUILD_TYPE=Release)
if(LINK_FLAGS)
  list(APPEND args "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}")
endif()
if(MODE STREQUAL "pkg_config")
  # Only the installed .pc file: no CMake package on any search path.
  set(ENV{PKG_CONFIG_PATH} "")
  file(GLOB pcdirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
  string(REPLACE ";" ":" pcpath "${pcdirs}")
  set(ENV{PKG_CONFIG_PATH} "${pcpath}")
  list(APPEND args -DUSE_PKG_CONFIG=ON -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  # liblamina.a links no external library: pkg-config names none.
  execute_process(COMMAND pkg-config --libs lamina RESULT_VARIABLE rc OUTPUT_VARIABLE libs)
  if(NOT rc EQUAL 0 OR libs MATCHES "sentencepiece|protobuf|json")
    message(FATAL_ERROR "pkg-config --libs lamina (${rc}): '${libs}' names an external library")
  endif()
  message(STATUS "pkg-config --libs lamina: ${libs}")
elseif(MODE STREQUAL "plain")
  list(APPEND args -DPLAIN_PREFIX=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  list(APPEND args -DCMAKE_PREFIX_PATH=${prefix})
endif()
run("configure consumer" ${CMAKE_COMMAND} ${args})
message(STATUS "${RUN_OUT}")
run("build consumer" ${CMAKE_COMMAND} --build ${WORK}/build)
run("run consumer" ${WORK}/build/consumer)
message(STATUS "${RUN_OUT}")
if(NOT RUN_OUT MATCHES "lamina version: .*${EXPECT_VERSION}")
  message(FATAL_ERROR "consumer printed '${RUN_OUT}', expected a version containing ${EXPECT_VERSION}")
endif()
