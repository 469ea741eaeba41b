# Hugging Face download (-hf, tools/hub): unit tests and end-to-end runs against
# a fake hub on 127.0.0.1 (tests/hf_hub_server.py). Nothing else is contacted.
#   lamina_hub_tests         HubSha.* (FIPS vectors, git blob ids), HubSpec*.* (-hf grammar)
#   hub.download_run_cached  llama-run -hf test/tiny downloads, converts, runs; the second run
#                            makes no request; offline (server stopped) still runs; another
#                            --weights converts the cached files without a request
#   hub.sharded              shards named by model.safetensors.index.json (and only those);
#                            the same text as the single-file copy
#   hub.resume               a 503 listing is retried; a transfer cut mid-file resumes (Range)
#   hub.corrupt              a wrong sha256 (from the listing, or X-Linked-Etag when the listing
#                            has none) is refused and fetched again; a file that stays
#                            wrong (git blob id) is refused, reported and deleted
#   hub.gated                401 -> the gated-repo message; a refused token -> 403 message
#   hub.missing              no such repo / file / revision; a malformed spec
#   hub.server_down          nothing listening -> "cannot reach ...: no network?"
#   hub.gguf                 ORG/REPO:FILE.gguf downloads just that file, converts, runs;
#                            a repo with several .gguf files and no FILE lists them
#   hub.meta                 Meta's original/ (consolidated.00.pth from
#                            tests/gen_meta_checkpoint.py; skipped without python3-torch)
#   hub.pipeline             -hf converts as lamina-convert DIR does (same bytes): the defaults (R4
#                            on a power-of-two ffn, --quant auto's self-calibrated GPTQ) and other
#                            options (--quant, --rotate, --seed, --calib: each its own cache
#                            entry); llama-run -hf reuses the default
#   hub.disk_full            a download larger than the free space is refused before any
#                            transfer, with a clear message
# Host builds only: the hub is not built on cross builds (LAMINA_WITH_HUB, CMakeLists.txt).
if(TARGET lamina_hub)
  lamina_add_test_binary(lamina_hub_tests ${PROJECT_SOURCE_DIR}/tools/hub/hub_test.cpp)
  target_link_libraries(lamina_hub_tests PRIVATE lamina_hub)
  lamina_discover(lamina_hub_tests unit)

  find_program(LAMINA_PYTHON3 python3 REQUIRED)
  if(TARGET llama-run AND TARGET lamina-convert)
    foreach(case download_run_cached sharded resume corrupt gated missing server_down gguf meta
                 disk_full pipeline)
      set(_hub_t ${LAMINA_TEST_PREFIX}hub.${case})
      add_test(NAME ${_hub_t}
               COMMAND ${LAMINA_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/hf_hub_test.py
                       ${PROJECT_BINARY_DIR} ${PROJECT_BINARY_DIR}/testdata/hub/${case} ${case})
      set(_hub_labels "unit;${LAMINA_TEST_LABEL}")
      if(case MATCHES "^(corrupt|resume|missing)$")
        list(APPEND _hub_labels asan)  # robustness: also under ASan + UBSan
      endif()
      set_tests_properties(${_hub_t} PROPERTIES TIMEOUT 300 LABELS "${_hub_labels}"
                           SKIP_RETURN_CODE 77)
    endforeach()
  endif()
endif()
