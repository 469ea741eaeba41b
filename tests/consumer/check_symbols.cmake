# cmake -DNM=<nm> -DLIB=<liblamina.a> -P check_symbols.cmake
# The runtime library only runs models: it needs no external library (no
# undefined symbol of libsentencepiece, protobuf or a JSON library) and holds
# none of the importers' code (tools/import: tokenizer source formats, JSON).
foreach(v NM LIB)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_symbols.cmake: -D${v}=... missing")
  endif()
endforeach()

function(symbols out)
  execute_process(COMMAND ${NM} -C ${ARGN} ${LIB} RESULT_VARIABLE rc OUTPUT_VARIABLE text
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} ${ARGN} ${LIB} failed (${rc}): ${err}")
  endif()
  string(REGEX REPLACE "\n" ";" lines "${text}")
  set(names "")
  foreach(l IN LISTS lines)
    # "<addr> T name" / "                 U name"; object headers "x.o:" and blanks skip.
    if(l MATCHES "^[0-9a-fA-F ]* [A-Za-z] (.+)$")
      list(APPEND names "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES names)
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

symbols(undefined --undefined-only)
symbols(defined --defined-only)
list(REMOVE_ITEM undefined ${defined})  # resolved inside the archive
list(LENGTH undefined n_external)

set(bad "")
foreach(s IN LISTS undefined)
  if(s MATCHES "sentencepiece|google::protobuf|protobuf|absl::|nlohmann|[Jj][Ss][Oo][Nn]|curl")
    list(APPEND bad "undefined: ${s}")
  endif()
endforeach()
foreach(s IN LISTS defined)
  if(s MATCHES "lamina::json::|lamina::tok::Load|TokenizerFrom|sentencepiece")
    list(APPEND bad "defined: ${s}")
  endif()
endforeach()
if(bad)
  list(JOIN bad "\n  " bad)
  message(FATAL_ERROR "${LIB} is not self-contained:\n  ${bad}")
endif()
message(STATUS "${LIB}: ${n_external} external symbols, none of sentencepiece / protobuf / "
               "JSON; no importer code")
