/* The public C API from a C99 program that includes only <lamina/lamina.h>.
 * Usage: lamina_capi_test MODEL.lamina  (a model with an embedded tokenizer,
 * e.g. lamina-convert --synthetic tiny). Exit 0 on success. */
#include <lamina/lamina.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int g_failures = 0;
#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              lamina_last_error());                                                           \
      ++g_failures;                                                                           \
    }                                                                                         \
  } while (0)

static int count_cb(int32_t token, const char* piece, size_t len, void* user) {
  int* n = (int*)user;
  (void)piece;
  (void)len;
  if (token >= 0) ++*n;
  return *n >= 5; /* stop after 5 tokens */
}

int main(int argc, char** argv) {
  lamina_model* model = NULL;
  lamina_context* ctx = NULL;
  lamina_sampler* smp = NULL;
  lamina_model_info mi;
  lamina_context_info ci;
  lamina_context_params cp;
  lamina_sampler_params sp;
  lamina_generate_result res;
  lamina_stats st;
  int32_t ids[64];
  size_t n = 0, i;
  int emitted = 0;
  const float* logits;
  char text[256];

  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.lamina\n", argv[0]);
    return 2;
  }
  CHECK(strlen(lamina_version_string()) > 0);
  CHECK(lamina_model_load("/nonexistent.lamina", NULL, &model) == LAMINA_ERR_LOAD);
  CHECK(model == NULL);
  CHECK(strstr(lamina_last_error(), "nonexistent") != NULL);
  if (lamina_model_load(argv[1], NULL, &model) != LAMINA_OK) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], lamina_last_error());
    return 1;
  }
  CHECK(lamina_model_get_info(model, &mi) == LAMINA_OK);
  CHECK(mi.vocab_size > 0 && mi.dim > 0 && mi.kernel_tier != NULL);

  cp = lamina_context_default_params();
  cp.n_ctx = 32;
  cp.n_threads = 1; /* (qemu-user here cannot start threads; tests/engine_test.cpp covers them) */
  CHECK(lamina_context_create(model, &cp, &ctx) == LAMINA_OK);
  if (!ctx) return 1;
  CHECK(lamina_context_get_info(ctx, &ci) == LAMINA_OK);
  CHECK(ci.n_ctx == 32 && ci.kv_bytes > 0 && ci.n_threads == 1);

  CHECK(lamina_tokenize(model, "hello", 5, 1, 0, ids, 64, &n) == LAMINA_OK);
  CHECK(n >= 2);
  CHECK(lamina_get_logits(ctx) == NULL);
  CHECK(lamina_eval(ctx, ids, n) == LAMINA_OK);
  logits = lamina_get_logits(ctx);
  CHECK(logits != NULL);
  if (logits) CHECK(isfinite(logits[0]));
  CHECK(lamina_n_past(ctx) == (int32_t)n);

  sp = lamina_sampler_default_params();
  sp.seed = 1234;
  CHECK(lamina_sampler_create(model, &sp, &smp) == LAMINA_OK);
  CHECK(lamina_generate(ctx, smp, NULL, 0, 20, count_cb, &emitted, &res) == LAMINA_OK);
  CHECK(res.reason == LAMINA_STOP_CALLBACK || res.reason == LAMINA_STOP_EOS);
  if (res.reason == LAMINA_STOP_CALLBACK) CHECK(emitted == 5 && res.n_generated == 5);

  /* Context full is an error, never an overrun. */
  for (i = 0; i < 64; ++i) ids[i] = 65;
  CHECK(lamina_eval(ctx, ids, 64) == LAMINA_ERR_CONTEXT_FULL);
  CHECK(lamina_kv_rewind(ctx, 2) == LAMINA_OK);
  CHECK(lamina_n_past(ctx) == 2);
  lamina_kv_clear(ctx);
  CHECK(lamina_n_past(ctx) == 0);

  CHECK(lamina_detokenize(model, ids, 3, text, sizeof(text), &n) == LAMINA_OK);
  CHECK(n == 3 && memcmp(text, "AAA", 3) == 0);

  CHECK(lamina_context_get_stats(ctx, &st) == LAMINA_OK);
  CHECK(st.prefill_tokens >= 2 && st.n_threads == 1 && st.peak_rss_bytes > 0);
  CHECK(strcmp(lamina_status_string(LAMINA_OK), "LAMINA_OK") == 0);

  lamina_sampler_free(smp);
  lamina_context_free(ctx);
  lamina_model_free(model);
  if (g_failures) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("capi_test: ok (%s, kernels %s)\n", lamina_version_string(), mi.kernel_tier);
  return 0;
}
