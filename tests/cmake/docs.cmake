# Docs that stay true (host builds; the checker reads the source tree only):
#   docs.paths           every repository path cited in README.md, docs/*.md and
#                        source comments exists (tools/check-doc-paths.py; run it
#                        from the repository root to see what is missing)
#   docs.paths_selftest  the checker on scratch trees: it fails on a missing file,
#                        accepts globs and placeholders (tools/check_doc_paths_test.py)
if(NOT CMAKE_CROSSCOMPILING)
  find_program(LAMINA_PYTHON3 python3 REQUIRED)
  add_test(NAME docs.paths
           COMMAND ${LAMINA_PYTHON3} ${PROJECT_SOURCE_DIR}/tools/check-doc-paths.py
                   --root ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs.paths PROPERTIES TIMEOUT 120 LABELS "docs;host")
  add_test(NAME docs.paths_selftest
           COMMAND ${LAMINA_PYTHON3} ${PROJECT_SOURCE_DIR}/tools/check_doc_paths_test.py)
  set_tests_properties(docs.paths_selftest PROPERTIES TIMEOUT 300 LABELS "docs;host")
endif()
