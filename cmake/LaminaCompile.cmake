# Compiler flags, per-file ISA flags and dependency lookup for lamina.

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(LAMINA_ARM64 ON)
else()
  set(LAMINA_ARM64 OFF)
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(LAMINA_X86_64 ON)
else()
  set(LAMINA_X86_64 OFF)
endif()

# Results are defined by kernels/ref with explicit std::fma only: the compiler
# must never contract a*b+c on its own (GCC's default for GNU C++ does).
add_compile_options(-ffp-contract=off)
if(LAMINA_ARM64)
  # Baseline for everything that is not a tier file: any 64-bit Arm board.
  add_compile_options(-march=armv8-a)
endif()
if(LAMINA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
# libFuzzer (clang): every object gets the coverage instrumentation and ASan +
# UBSan; only the harnesses link libFuzzer's main (tests/fuzz/CMakeLists.txt).
if(LAMINA_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LAMINA_BUILD_FUZZ needs clang (cmake --preset fuzz)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
if(LAMINA_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

function(lamina_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(LAMINA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Only the files of a tier get that tier's ISA flags; the name states the tier.
#   aarch64: *_dotprod.cpp -> +dotprod, *_i8mm.cpp -> +dotprod+i8mm,
#            kernels/sve/* -> +sve (and +i8mm when the name contains i8mm).
#            Later -march wins over the baseline.
#   x86-64 (kernels/x86/): *_avx2.cpp -> AVX2+FMA+F16C, *_avxvnni.cpp -> + AVX-VNNI,
#            *_avx512vnni.cpp -> + AVX-512 F/BW/VL/VNNI. Everything else stays
#            baseline x86-64, so one binary runs on any x86-64 CPU.
set(LAMINA_X86_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(LAMINA_X86_AVXVNNI_FLAGS ${LAMINA_X86_AVX2_FLAGS} -mavxvnni)
set(LAMINA_X86_AVX512VNNI_FLAGS ${LAMINA_X86_AVX2_FLAGS} -mavx512f -mavx512bw -mavx512vl
    -mavx512vnni)
function(lamina_set_isa_flags sources)
  if(LAMINA_X86_64)
    foreach(src IN LISTS sources)
      get_filename_component(name ${src} NAME)
      if(NOT src MATCHES "kernels/x86/")
        continue()
      elseif(name MATCHES "_avx512vnni(_test)?\\.cpp$")
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${LAMINA_X86_AVX512VNNI_FLAGS}")
      elseif(name MATCHES "_avxvnni(_test)?\\.cpp$")
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${LAMINA_X86_AVXVNNI_FLAGS}")
      elseif(name MATCHES "_avx2(_test)?\\.cpp$")
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${LAMINA_X86_AVX2_FLAGS}")
      endif()
    endforeach()
    return()
  endif()
  if(NOT LAMINA_ARM64)
    return()
  endif()
  foreach(src IN LISTS sources)
    get_filename_component(name ${src} NAME)
    set(flag "")
    if(src MATCHES "kernels/sve/")
      if(name MATCHES "i8mm")
        set(flag "-march=armv8.2-a+dotprod+i8mm+sve")
      else()
        set(flag "-march=armv8.2-a+dotprod+sve")
      endif()
    elseif(name MATCHES "_i8mm\\.cpp$")
      set(flag "-march=armv8.2-a+dotprod+i8mm")
    elseif(name MATCHES "_dotprod\\.cpp$")
      set(flag "-march=armv8.2-a+dotprod")
    endif()
    if(flag)
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${flag}")
    endif()
  endforeach()
endfunction()

# SentencePiece (tools and tests only: lamina_import's second reader of .model
# files, and the tokenizer tests' oracle): host from the system; a cross build
# points LAMINA_SENTENCEPIECE_LIBRARY at the arm64 runtime library extracted
# from Debian's package (tools/setup-deps.sh does this) and uses the host
# headers. A cross build without it builds on without libsentencepiece (the
# oracle tests skip); a host build asked for it needs it.
function(lamina_link_sentencepiece target)
  if(NOT LAMINA_WITH_SENTENCEPIECE)
    return()
  endif()
  find_path(LAMINA_SENTENCEPIECE_INCLUDE sentencepiece_processor.h)
  set(_arm_sp ${PROJECT_SOURCE_DIR}/.deps/arm64/usr/lib/aarch64-linux-gnu/libsentencepiece.so.0)
  if(NOT LAMINA_SENTENCEPIECE_LIBRARY AND CMAKE_CROSSCOMPILING AND LAMINA_ARM64
     AND EXISTS ${_arm_sp})
    # Extracted from Debian's libsentencepiece0:arm64 by tools/setup-deps.sh
    # (it conflicts with the amd64 package, so it is not installed).
    set(LAMINA_SENTENCEPIECE_LIBRARY ${_arm_sp} CACHE FILEPATH "libsentencepiece to link" FORCE)
  endif()
  if(NOT LAMINA_SENTENCEPIECE_LIBRARY)
    find_library(LAMINA_SENTENCEPIECE_LIBRARY sentencepiece)
  endif()
  if(NOT LAMINA_SENTENCEPIECE_INCLUDE OR NOT LAMINA_SENTENCEPIECE_LIBRARY)
    if(CMAKE_CROSSCOMPILING)
      message(STATUS "lamina: ${target} without libsentencepiece (no ${_arm_sp}: "
                     "tools/setup-deps.sh unpacks it)")
      return()
    endif()
    message(FATAL_ERROR "libsentencepiece not found (install libsentencepiece-dev, or configure "
                        "with -DLAMINA_WITH_SENTENCEPIECE=OFF)")
  endif()
  target_include_directories(${target} SYSTEM PRIVATE ${LAMINA_SENTENCEPIECE_INCLUDE})
  target_link_libraries(${target} PUBLIC ${LAMINA_SENTENCEPIECE_LIBRARY})
  target_compile_definitions(${target} PRIVATE LAMINA_WITH_SENTENCEPIECE=1)
endfunction()
