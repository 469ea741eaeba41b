/*
 * lamina — Llama 3.2 inference on Arm CPUs. The public C API (C99).
 *
 * Objects
 *   lamina_model        a loaded model file: read-only after loading and safe to
 *                       share between threads (any number of contexts may use it
 *                       concurrently). Must outlive every context and sampler
 *                       created from it.
 *   lamina_context      one inference stream: KV cache, work buffers, thread pool.
 *                       Use a context from one thread at a time (no internal lock).
 *   lamina_sampler      sampling parameters + a seeded random generator; one
 *                       thread at a time.
 *   lamina_detokenizer  streaming token -> UTF-8 text; one thread at a time.
 *   lamina_adapter      a LoRA adapter loaded for one model: read-only, shareable
 *                       like the model; contexts attach it with a scale.
 *
 * Errors
 *   Functions that can fail return lamina_status. On failure, a message naming
 *   the cause (file, field, limit) is stored per thread and returned by
 *   lamina_last_error(). No C++ exception ever crosses this API; the library
 *   never aborts or exits on bad input.
 *
 * Ownership
 *   Out-pointers (*out) receive objects owned by the caller, released with the
 *   matching *_free function (which accepts NULL). Returned const pointers
 *   (logits, strings) are owned by the library; their lifetime is stated per
 *   function.
 *
 * Context-full policy
 *   By default lamina never shifts or drops cached tokens on its own:
 *   evaluating tokens that would exceed n_ctx fails with LAMINA_ERR_CONTEXT_FULL
 *   and evaluates none of them (the context is unchanged), and lamina_generate
 *   stops with LAMINA_STOP_CONTEXT_FULL. The caller may lamina_kv_rewind() /
 *   lamina_kv_clear() / lamina_kv_shift() and continue. With
 *   lamina_context_params.context_shift set, lamina_generate shifts instead
 *   (keeps the first n_keep tokens, drops the oldest half of the rest) and
 *   goes on; lamina_eval keeps failing.
 */
#ifndef LAMINA_LAMINA_H_
#define LAMINA_LAMINA_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ basics */

/** Library version, "MAJOR.MINOR.PATCH" (static string). Thread-safe. */
const char* lamina_version_string(void);

typedef enum lamina_status {
  LAMINA_OK = 0,
  LAMINA_ERR_INVALID_ARG = 1,      /* NULL pointer, value out of range, bad token id */
  LAMINA_ERR_LOAD = 2,             /* model file missing, unreadable, corrupt or unsupported */
  LAMINA_ERR_KERNEL_TIER = 3,      /* requested kernel tier unknown or unavailable on this CPU */
  LAMINA_ERR_OUT_OF_MEMORY = 4,    /* allocation failed (KV cache, buffers) */
  LAMINA_ERR_CONTEXT_FULL = 5,     /* the tokens do not fit in n_ctx; nothing was evaluated */
  LAMINA_ERR_NO_TOKENIZER = 6,     /* the model file embeds no tokenizer */
  LAMINA_ERR_TOKENIZE = 7,         /* text could not be tokenized (invalid UTF-8) */
  LAMINA_ERR_BUFFER_TOO_SMALL = 8, /* output buffer too small; the needed size is reported */
  LAMINA_ERR_NO_LOGITS = 9,        /* no logits available (nothing evaluated since rewind) */
  LAMINA_ERR_INTERNAL = 10,        /* unexpected internal failure (a bug) */
  LAMINA_ERR_NO_CHAT_TEMPLATE = 11, /* the tokenizer has no chat template */
  LAMINA_ERR_NUMERIC = 12, /* NaN or Inf in the forward pass (corrupt weights); the message
                             names the layer; the context is as before the call */
  LAMINA_ERR_SESSION = 13, /* session file unreadable, truncated, corrupt, or saved with another
                             model / KV type / a larger context (lamina_state_load), or not
                             writable (lamina_state_save) */
  LAMINA_ERR_ADAPTER = 14 /* LoRA adapter file unreadable, corrupt, or made for another base
                             model (shapes, layers or binding hash differ; the message names
                             the tensor) */
} lamina_status;

/** Static name of a status ("LAMINA_OK", ...). Thread-safe. */
const char* lamina_status_string(lamina_status s);

/** Message of the most recent failure on this thread ("" if none; successful
 *  calls do not clear it). Valid until the next failing call on this thread. */
const char* lamina_last_error(void);

/* ------------------------------------------------------------------- model */

typedef struct lamina_model lamina_model;

typedef struct lamina_model_params {
  int populate;        /* nonzero: fault every page in at load (MAP_POPULATE) */
  int mlock;           /* nonzero: lock the mapping in RAM (failure is an error) */
  const char* kernels; /* kernel tier "ref"|"auto", aarch64 "neon"|"dotprod"|"i8mm"|"sve",
                          x86-64 "avx2"|"avxvnni"|"avx512vnni";
                          NULL: $LAMINA_KERNELS, else the best tier of this CPU */
} lamina_model_params;

/** Defaults: no populate, no mlock, kernels NULL. */
lamina_model_params lamina_model_default_params(void);

/** Maps and validates a .lamina file (no weight copy, no repack). params may
 *  be NULL (defaults). On success *out owns the model (lamina_model_free). */
lamina_status lamina_model_load(const char* path, const lamina_model_params* params,
                                lamina_model** out);
/** Frees a model (NULL is a no-op). Every context/sampler/detokenizer made from
 *  it must be freed first. */
void lamina_model_free(lamina_model* model);

typedef struct lamina_model_info {
  int32_t dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim;
  int32_t vocab_size;
  int32_t max_context; /* the model's maximum positions */
  float rope_theta;
  int32_t rope_llama3;    /* nonzero: llama3 frequency scaling */
  int32_t bos_id, eos_id; /* -1 if none */
  int32_t n_stop_ids;
  int32_t stop_ids[16];    /* tokens that end a generation */
  int32_t lora_rank;       /* 0: no LoRA adaptors */
  int32_t has_tokenizer;   /* the file embeds one (deserialized on first use: a corrupt
                             blob is reported by the first tokenizer call) */
  char weight_scheme[32];  /* "q4", "f32", "meta-qat-lora", ... (from the file) */
  const char* kernel_tier; /* static string: "ref", "neon", ... */
  uint64_t file_bytes;     /* size of the mapped file */
  double load_ms;          /* wall time of lamina_model_load */
} lamina_model_info;

/** Fills *info. Thread-safe. */
lamina_status lamina_model_get_info(const lamina_model* model, lamina_model_info* info);

/* ------------------------------------------------------------ tokenization */

/** Text (UTF-8, len bytes) -> token ids. add_bos: prepend BOS; parse_special:
 *  special-token text such as "<|eot_id|>" maps to its id. Writes at most
 *  capacity ids to tokens; *n_tokens receives the count. If capacity is too
 *  small: LAMINA_ERR_BUFFER_TOO_SMALL with *n_tokens = the needed count.
 *  Errors: LAMINA_ERR_NO_TOKENIZER, LAMINA_ERR_TOKENIZE. Thread-safe. */
lamina_status lamina_tokenize(const lamina_model* model, const char* text, size_t len, int add_bos,
                              int parse_special, int32_t* tokens, size_t capacity,
                              size_t* n_tokens);

/** Token ids -> text (invalid UTF-8 replaced by U+FFFD). Writes at most
 *  capacity bytes (no NUL terminator is added); *n_bytes receives the length.
 *  LAMINA_ERR_BUFFER_TOO_SMALL with *n_bytes = needed length. Thread-safe. */
lamina_status lamina_detokenize(const lamina_model* model, const int32_t* tokens, size_t n,
                                char* text, size_t capacity, size_t* n_bytes);

/** The raw bytes of one token (may be a partial UTF-8 sequence), same buffer
 *  convention as lamina_detokenize. Thread-safe. */
lamina_status lamina_token_to_piece(const lamina_model* model, int32_t token, char* buf,
                                    size_t capacity, size_t* n_bytes);

/** Streaming detokenizer: push ids one by one, get text that never ends in a
 *  partial UTF-8 sequence (SentencePiece vocabularies: the leading space after
 *  BOS is dropped, as run.c does). */
typedef struct lamina_detokenizer lamina_detokenizer;
lamina_status lamina_detokenizer_create(const lamina_model* model, lamina_detokenizer** out);
void lamina_detokenizer_free(lamina_detokenizer* d);
/** Pushes one id; returns the text completed by it (NUL-terminated, owned by d,
 *  valid until the next call on d); never NULL. */
const char* lamina_detokenizer_push(lamina_detokenizer* d, int32_t token);
/** Returns whatever bytes are held (invalid ones replaced) and resets. */
const char* lamina_detokenizer_flush(lamina_detokenizer* d);

/** One chat message; role "system", "user", "assistant" or "ipython". */
typedef struct lamina_chat_message {
  const char* role;
  const char* content;
} lamina_chat_message;

/** Renders messages with the model's chat template (Llama 3.x instruct:
 *  "<|begin_of_text|>" then per message "<|start_header_id|>ROLE<|end_header_id|>\n\n"
 *  CONTENT "<|eot_id|>"; add_generation_prompt appends the assistant header).
 *  Tokenize the result with add_bos = 0 and parse_special = 1. Same buffer
 *  convention as lamina_detokenize. LAMINA_ERR_NO_CHAT_TEMPLATE if the
 *  tokenizer has none. Thread-safe. */
lamina_status lamina_chat_apply_template(const lamina_model* model,
                                         const lamina_chat_message* messages, size_t n,
                                         int add_generation_prompt, char* text, size_t capacity,
                                         size_t* n_bytes);

/* ----------------------------------------------------------------- context */

typedef struct lamina_context lamina_context;

/* LAMINA_KV_Q8: int8 keys and values with an f16 scale per (position, kv
 * head), about half the bytes of F16 (kernels/ref/kv_q8.h). */
typedef enum lamina_kv_type {
  LAMINA_KV_F16 = 0,
  LAMINA_KV_F32 = 1,
  LAMINA_KV_Q8 = 2
} lamina_kv_type;

typedef struct lamina_context_params {
  int32_t n_ctx;          /* KV cache positions; 0: min(8192, model max_context);
                             at most the model's max_context */
  int32_t n_threads;      /* 0: the number of performance cores */
  lamina_kv_type kv_type; /* LAMINA_KV_F16 (default), LAMINA_KV_F32 or LAMINA_KV_Q8 */
  int32_t n_batch;        /* tokens per forward pass (prefill chunk), 0: 64 */
  int32_t logits_all;     /* nonzero: keep every evaluated position's logits
                             (then lamina_eval takes at most n_batch tokens per call) */
  /* Appended in 0.x (context shift); the defaults keep the old behaviour. */
  int32_t context_shift; /* nonzero: lamina_generate shifts the cache when it is full
                            (see lamina_kv_shift) instead of stopping. Default 0 */
  int32_t n_keep;        /* tokens the shift never drops (BOS + system prompt);
                            0 <= n_keep < n_ctx. Default 0 */
} lamina_context_params;

lamina_context_params lamina_context_default_params(void);

/** Creates a context on model: allocates the KV cache, every work buffer and a
 *  thread pool (nothing is allocated later per token). params may be NULL.
 *  Thread-safe with respect to the model (several threads may create contexts
 *  on one model concurrently). */
lamina_status lamina_context_create(const lamina_model* model, const lamina_context_params* params,
                                    lamina_context** out);
void lamina_context_free(lamina_context* ctx);

typedef struct lamina_context_info {
  int32_t n_ctx, n_batch, n_threads;
  lamina_kv_type kv_type;
  uint64_t kv_bytes;    /* KV cache size */
  uint64_t state_bytes; /* other per-context buffers */
  int32_t n_past;       /* tokens currently cached */
} lamina_context_info;

lamina_status lamina_context_get_info(const lamina_context* ctx, lamina_context_info* info);

/** Evaluates n >= 1 tokens at positions [n_past, n_past + n) (prompts longer
 *  than n_batch are split into chunks internally). Afterwards the logits of the
 *  last token are available (and of every token when logits_all).
 *  LAMINA_ERR_CONTEXT_FULL if n_past + n > n_ctx (nothing evaluated);
 *  LAMINA_ERR_INVALID_ARG for an id outside [0, vocab); LAMINA_ERR_NUMERIC
 *  when an activation or logit is NaN or Inf (n_past is left unchanged). */
lamina_status lamina_eval(lamina_context* ctx, const int32_t* tokens, size_t n);

/** Logits [vocab_size] of the last evaluated token, or NULL if none (fresh
 *  context, after rewind/clear). Owned by ctx, valid until the next eval,
 *  rewind or free. */
const float* lamina_get_logits(const lamina_context* ctx);
/** With logits_all: logits of token i (0-based) of the last lamina_eval call;
 *  NULL if i is out of range or logits_all is off (use lamina_get_logits). */
const float* lamina_get_logits_ith(const lamina_context* ctx, int32_t i);

/** Tokens currently in the KV cache. */
int32_t lamina_n_past(const lamina_context* ctx);
/** Keeps the first n cached tokens (n <= n_past), forgetting the rest; the
 *  next eval continues at position n. Logits become unavailable. */
lamina_status lamina_kv_rewind(lamina_context* ctx, int32_t n);
/** Copies the cached tokens (n_past of them, in order) to tokens; *n_tokens
 *  receives n_past. LAMINA_ERR_BUFFER_TOO_SMALL if capacity < n_past. */
lamina_status lamina_kv_tokens(const lamina_context* ctx, int32_t* tokens, size_t capacity,
                               size_t* n_tokens);
/** Forgets every cached token (= rewind to 0). */
void lamina_kv_clear(lamina_context* ctx);

/** Context shift: forgets cached positions [n_keep, n_keep + n_discard) and
 *  moves the later tokens down by n_discard, so that n_past drops by
 *  n_discard and evaluation continues. Values move unchanged; keys are
 *  re-rotated to their new positions (RoPE by the position delta, angles in
 *  double). The result equals a fresh evaluation at the new positions up to
 *  rounding: f32 KV within a few f32 ulps, f16 KV within one extra f16
 *  rounding of each moved key (measured in engine/shift_test.cpp) -- apart from
 *  the approximation inherent to any context shift: the kept tokens' cached
 *  states were computed while the dropped tokens were visible. The last
 *  logits stay available. LAMINA_ERR_INVALID_ARG unless n_keep >= 0,
 *  n_discard >= 1 and n_keep + n_discard <= n_past. */
lamina_status lamina_kv_shift(lamina_context* ctx, int32_t n_keep, int32_t n_discard);

/* ------------------------------------------------------------ LoRA adapters */

/* A LoRA adapter (a fine-tune's low-rank deltas) applied at run time on top of
 * the model, whatever its weight scheme (q4, q8, bf16, f32, Meta's QAT+LoRA
 * whose own adaptors stay). Adapter files are made from a Hugging Face PEFT
 * adapter directory by `lamina-convert --lora-adapter DIR -m BASE.lamina -o
 * ADAPTER.lamina` (docs/FORMAT.md "Adapter files"). An attached adapter makes
 * every linear it targets compute
 *     y = W x + (scale * alpha / r) * B (A x)
 * in float, on the linear's float input x (before the int8 quantization of a
 * q4 / q8 linear): the adapter adds only its own float rounding. */
typedef struct lamina_adapter lamina_adapter;

/** Maximum adapters attached to one context at once. */
#define LAMINA_MAX_ADAPTERS 16

/** Maps and validates an adapter file for model: every tensor must name a
 *  layer of the model and fit its linear's shape, and the file must have been
 *  converted for this base model (its binding hash: the hyperparameters and
 *  the norm weights, the same for the checkpoint's q4 / q8 / f32 conversions).
 *  LAMINA_ERR_ADAPTER naming the file and tensor otherwise. The adapter is
 *  read-only after loading: any number of contexts of model may use it
 *  concurrently. It must outlive its attachments; model must outlive it.
 *  On a base whose ffn_down takes the online Hadamard H (lamina-convert's
 *  default R4, SpinQuant) the adapter's A for it is stored as A H at load
 *  (f32, r x ffn_dim floats per layer), so the same file serves the
 *  --rotate none and the rotated conversions of a checkpoint. */
lamina_status lamina_adapter_load(const lamina_model* model, const char* path,
                                  lamina_adapter** out);
/** Frees an adapter (NULL is a no-op). Detach it from every context first. */
void lamina_adapter_free(lamina_adapter* adapter);

/** Attaches adapters[0..n) to ctx with scales[i] (a multiplier of adapter i's
 *  own alpha / r: 1 = as trained, 0 = off), replacing the set attached
 *  before; n = 0 detaches all. Adapters apply in order, after the model's own
 *  adaptors. Only tokens evaluated afterwards see the change: the KV cache
 *  keeps what earlier tokens were computed with (lamina_kv_clear for a clean
 *  switch; sessions do not record adapters). LAMINA_ERR_INVALID_ARG for
 *  n > LAMINA_MAX_ADAPTERS, NULL entries, a non-finite scale or an adapter
 *  loaded for another model; nothing changes then. */
lamina_status lamina_context_set_adapters(lamina_context* ctx,
                                          const lamina_adapter* const* adapters,
                                          const float* scales, size_t n);

/* ---------------------------------------------------------------- sampling */

typedef struct lamina_sampler_params {
  float temperature;     /* <= 0: greedy (argmax; ties -> lowest id). Default 0.8 */
  int32_t top_k;         /* <= 0: off. Default 40 */
  float top_p;           /* >= 1: off. Default 0.95 */
  float min_p;           /* <= 0: off. Default 0.05 */
  float repeat_penalty;  /* 1: off. Default 1.0 (llama.cpp semantics) */
  int32_t repeat_last_n; /* history window of the penalty. Default 64 */
  uint64_t seed;         /* RNG seed: same seed, same logits -> same tokens on every platform */
} lamina_sampler_params;

lamina_sampler_params lamina_sampler_default_params(void);

typedef struct lamina_sampler lamina_sampler;
/** Creates a sampler for model's vocabulary (buffers allocated once). Order of
 *  the chain: repetition penalty, top-k, top-p, min-p, temperature, draw. */
lamina_status lamina_sampler_create(const lamina_model* model, const lamina_sampler_params* p,
                                    lamina_sampler** out);
void lamina_sampler_free(lamina_sampler* s);
/** Samples from ctx's last logits; the penalty looks at ctx's cached tokens.
 *  LAMINA_ERR_NO_LOGITS if nothing was evaluated. */
lamina_status lamina_sample(lamina_sampler* s, const lamina_context* ctx, int32_t* token);

/* ------------------------------------------------------ constrained output */

/* Grammars (GBNF, llama.cpp's format)
 *   A sampler with a grammar only draws tokens that keep the generated text a
 *   prefix of a match: before the chain (after the repetition penalty) every
 *   other token is dropped, as if its logit were -inf, with greedy and
 *   temperature sampling alike. Stop tokens (lamina_model_info.stop_ids) are
 *   allowed exactly when the text so far is a complete match; special tokens
 *   never. The grammar advances by each token the sampler returns.
 *   Matching is on each token's raw bytes (a token may end inside a UTF-8
 *   character); SentencePiece vocabularies: a piece's leading space counts,
 *   so start generation after some prompt text, not right after BOS.
 *   Lifetime of one match: lamina_generate / lamina_generate_ex restart the
 *   grammar when called with a prompt (n_prompt > 0) and continue it when
 *   n_prompt == 0; lamina_sample never restarts it
 *   (lamina_sampler_grammar_reset does). A generation cut by max_tokens or a
 *   full context leaves the match incomplete: check
 *   lamina_sampler_grammar_state. A grammar that can end and allows nothing
 *   more, on a model without stop tokens, ends lamina_generate with
 *   LAMINA_STOP_EOS and stop_token -1.
 *   The vocabulary trie the masks are computed over is built once per model
 *   (on the first grammar) and shared. Not with lamina_generate_speculative. */

/** Attaches a grammar to s (replacing any; NULL gbnf removes it). gbnf: GBNF
 *  text (rules `name ::= ...`, | ( ) * + ? {m,n}, "literals", [classes] with
 *  ranges and ^, ., escapes \n \t \" \\ \xHH \uHHHH, # comments); root: the
 *  start rule (NULL: "root"). Compiled once, here. LAMINA_ERR_INVALID_ARG with
 *  "grammar line L col C: ..." for a syntax error, an undefined rule, left
 *  recursion (named), or a grammar over the size caps; LAMINA_ERR_NO_TOKENIZER
 *  if the model has none. Same threading rule as the sampler (the model's
 *  shared trie is built thread-safely). */
lamina_status lamina_sampler_set_grammar(lamina_sampler* s, const char* gbnf, const char* root);

/** Restarts s's grammar at its start rule (no-op without a grammar). */
void lamina_sampler_grammar_reset(lamina_sampler* s);

typedef enum lamina_grammar_state {
  LAMINA_GRAMMAR_NONE = 0,       /* the sampler has no grammar (or s is NULL) */
  LAMINA_GRAMMAR_INCOMPLETE = 1, /* the text so far is not (yet) a complete match */
  LAMINA_GRAMMAR_COMPLETE = 2    /* the text so far is a complete match (it may end here) */
} lamina_grammar_state;

/** Where s's grammar stands: after a generation stopped by max_tokens (or a
 *  full context), LAMINA_GRAMMAR_INCOMPLETE means the output was cut before it
 *  became valid. */
lamina_grammar_state lamina_sampler_grammar_state(const lamina_sampler* s);

/* -------------------------------------------------------------- generation */

/** Called once per generated token with its text (piece: the streaming
 *  detokenizer's output, may be empty; NULL/0 when the model has no tokenizer).
 *  Return nonzero to stop generating. After the last token, bytes the streaming
 *  detokenizer still holds (an incomplete UTF-8 tail) are delivered by one more
 *  call with token == -1, whose return value is ignored. */
typedef int (*lamina_token_callback)(int32_t token, const char* piece, size_t piece_len,
                                     void* user);

typedef enum lamina_stop_reason {
  LAMINA_STOP_NONE = 0,
  LAMINA_STOP_EOS = 1,          /* a stop token was sampled (not emitted, not evaluated) */
  LAMINA_STOP_LENGTH = 2,       /* max_tokens emitted */
  LAMINA_STOP_CALLBACK = 3,     /* the callback returned nonzero */
  LAMINA_STOP_CONTEXT_FULL = 4, /* the KV cache is full */
  LAMINA_STOP_STRING = 5        /* a stop string occurred (the _ex generation entries) */
} lamina_stop_reason;

typedef struct lamina_generate_result {
  size_t n_generated; /* tokens emitted to the callback */
  lamina_stop_reason reason;
  int32_t stop_token; /* the stop token sampled (LAMINA_STOP_EOS), else -1 */
} lamina_generate_result;

/** Evaluates prompt (n_prompt may be 0 if the context already holds logits),
 *  then repeatedly samples, emits (callback) and evaluates tokens, up to
 *  max_tokens. Every emitted token is evaluated into the context before this
 *  returns, so the context holds prompt + emitted tokens (stop tokens are not
 *  evaluated). A prompt that does not fit fails with LAMINA_ERR_CONTEXT_FULL;
 *  running out of context during generation is a normal stop. result may be
 *  NULL; cb may be NULL. With context_shift (lamina_context_params), a full
 *  context is shifted instead (first n_keep tokens kept, the oldest half of the
 *  rest dropped, see lamina_kv_shift), before the prompt if it does not fit
 *  (then at least enough is dropped for it) and during generation; the context
 *  then holds the kept tokens + the rest. */
lamina_status lamina_generate(lamina_context* ctx, lamina_sampler* s, const int32_t* prompt,
                              size_t n_prompt, size_t max_tokens, lamina_token_callback cb,
                              void* user, lamina_generate_result* result);

/* Stop strings (lamina_generate_ex)
 *   A stop string ends the generation as soon as it occurs in the generated
 *   text, even when it spans several tokens. Text is never emitted past the
 *   start of a stop string: the callback's pieces hold back the longest tail
 *   that could still become a stop string (so a piece may be empty and a later
 *   piece may carry held text); the held tail is delivered when it cannot
 *   match any more, or at the end by the final token == -1 call. On a match
 *   the callback receives the text before the stop string, the rest is
 *   dropped, and the result's reason is LAMINA_STOP_STRING. Matching is on the
 *   UTF-8 bytes of the detokenized text (the streaming detokenizer's output,
 *   which never splits a UTF-8 sequence). The token that completes a stop
 *   string counts as generated and is evaluated into the context, like every
 *   emitted token. Stop tokens (lamina_model_info.stop_ids) still apply. */

/** Generation parameters for lamina_generate_ex. */
typedef struct lamina_generate_params {
  size_t max_tokens;              /* at most this many tokens are emitted. Default 128 */
  const char* const* stop;        /* n_stop NUL-terminated, non-empty strings (at most
                                     LAMINA_MAX_STOP_STRINGS, each at most
                                     LAMINA_MAX_STOP_STRING_BYTES bytes); copied,
                                     need not outlive the call. NULL if n_stop == 0 */
  size_t n_stop;                  /* number of stop strings. Default 0 */
  lamina_token_callback callback; /* may be NULL. Default NULL */
  void* user;                     /* passed to callback. Default NULL */
} lamina_generate_params;

#define LAMINA_MAX_STOP_STRINGS 64
#define LAMINA_MAX_STOP_STRING_BYTES 1024

/** Defaults: max_tokens 128, no stop strings, no callback. */
lamina_generate_params lamina_generate_default_params(void);

/** lamina_generate with stop strings: same contract as lamina_generate (params
 *  carries max_tokens, callback and user). Stop strings need a tokenizer
 *  (LAMINA_ERR_NO_TOKENIZER otherwise); a NULL, empty or too long stop string,
 *  or too many, is LAMINA_ERR_INVALID_ARG. params may be NULL (defaults).
 *  lamina_generate(ctx, s, p, n, max, cb, user, r) is exactly
 *  lamina_generate_ex with {max, NULL, 0, cb, user}. */
lamina_status lamina_generate_ex(lamina_context* ctx, lamina_sampler* s, const int32_t* prompt,
                                 size_t n_prompt, const lamina_generate_params* params,
                                 lamina_generate_result* result);

/* ------------------------------------------------------ speculative decoding */

/** Speculative decoding: a drafter proposes up to draft_max tokens, the target
 *  verifies them in ONE batched pass (one read of its weights for several
 *  tokens), keeps the longest accepted prefix and rewinds its KV cache past the
 *  rest. Greedy (temperature <= 0): the output is exactly plain greedy
 *  decoding's, bit for bit. Sampling: the standard rejection rule keeps every
 *  token's distribution exactly the sampler's (the draws differ from
 *  lamina_generate's for the same seed; the same seed gives the same tokens).
 *  Drafters: prompt lookup (the continuation of the most recent earlier
 *  occurrence of the context's last n-gram; no second model) and/or a draft
 *  model (a context on a smaller model with the same vocabulary; lookup is
 *  tried first when both are set). The draft length adapts to the acceptance
 *  rate and drafting pauses (plain decoding) while it does not pay. */
typedef struct lamina_speculative_params {
  int32_t lookup;        /* nonzero: prompt-lookup drafting */
  int32_t lookup_ngram;  /* longest n-gram matched, then shorter down to 1 (default 3) */
  int32_t draft_max;     /* most tokens drafted per target pass, 1..64 (default 8; also
                            at most the target's n_batch - 1) */
  lamina_context* draft; /* draft-model context, or NULL; not ctx itself. Used from the
                            calling thread; its cache is synced to ctx's tokens */
} lamina_speculative_params;

/** Defaults: lookup 0, lookup_ngram 3, draft_max 8, draft NULL. */
lamina_speculative_params lamina_speculative_default_params(void);

typedef struct lamina_speculative_stats {
  uint64_t generated;     /* tokens emitted */
  uint64_t drafted;       /* tokens proposed */
  uint64_t accepted;      /* proposed tokens the target accepted */
  uint64_t target_passes; /* target forward passes (plain decoding: one per token) */
  uint64_t draft_passes;  /* draft-model forward passes */
  double ms;              /* wall time of the generation */
} lamina_speculative_stats;

/** lamina_generate with speculative decoding (same prompt, callback, stop,
 *  context-shift and result contract). LAMINA_ERR_INVALID_ARG when neither
 *  drafter is set, for a draft context on a model whose vocabulary differs from
 *  ctx's (the message names the first differing token) or for draft == ctx.
 *  When the context fills: with ctx's context_shift on, both ctx and the draft
 *  context drop the same positions (as lamina_generate does: the first n_keep
 *  kept, half of the rest dropped) and generation continues; otherwise it stops
 *  with LAMINA_STOP_CONTEXT_FULL. Greedy output equals lamina_generate's in
 *  either case. stats may be NULL. = lamina_generate_speculative_ex with
 *  {max_tokens, NULL, 0, cb, user}. */
lamina_status lamina_generate_speculative(lamina_context* ctx, lamina_sampler* s,
                                          const int32_t* prompt, size_t n_prompt, size_t max_tokens,
                                          const lamina_speculative_params* params,
                                          lamina_token_callback cb, void* user,
                                          lamina_generate_result* result,
                                          lamina_speculative_stats* stats);

/** lamina_generate_speculative with stop strings (params as for
 *  lamina_generate_ex; NULL: defaults): the emitted text, the stop reason and
 *  the tokens left in the KV cache are exactly lamina_generate_ex's (greedy). */
lamina_status lamina_generate_speculative_ex(lamina_context* ctx, lamina_sampler* s,
                                             const int32_t* prompt, size_t n_prompt,
                                             const lamina_generate_params* params,
                                             const lamina_speculative_params* spec,
                                             lamina_generate_result* result,
                                             lamina_speculative_stats* stats);

/* ---------------------------------------------------------------- sessions */

/** Saves ctx's cached tokens, their KV rows (only the n_past used positions),
 *  the last logits (if any) and, if s is not NULL, s's random generator state
 *  to path. The file is bound to the model (a hash of its header, tensor
 *  directory and the first 4 KiB of each tensor) and to the KV type, and carries a checksum. Written atomically:
 *  a temporary file next to path, fsync'ed, renamed over path (a failure
 *  leaves path as it was). LAMINA_ERR_SESSION (+ message) if it cannot be
 *  written. Same threading rule as the context (and s). */
lamina_status lamina_state_save(const lamina_context* ctx, const char* path,
                                const lamina_sampler* s);

/** Replaces ctx's cache with a session saved by lamina_state_save: n_past,
 *  tokens, KV rows and the last logits (generation can continue at once), and
 *  s's random generator state if s is not NULL and the file has one (so a
 *  sampled continuation is identical to an uninterrupted run). The file is
 *  fully validated first (size, checksum, model, KV type, token ids); any
 *  failure returns LAMINA_ERR_SESSION with a message (missing, truncated or
 *  corrupt file; "saved with another model"; other KV type; more tokens than
 *  ctx's n_ctx) and leaves ctx and s unchanged. ctx may have a different
 *  n_ctx, n_batch or thread count than the saving context. */
lamina_status lamina_state_load(lamina_context* ctx, const char* path, lamina_sampler* s);

/* ------------------------------------------------------------------- stats */

typedef struct lamina_stats {
  double load_ms;          /* model load */
  uint64_t prefill_tokens; /* tokens evaluated by lamina_eval calls with n >= 2 */
  double prefill_ms;
  uint64_t decode_tokens; /* tokens evaluated one per call */
  double decode_ms;
  uint64_t peak_rss_bytes; /* process peak resident set size */
  int32_t n_threads;
  const char* kernel_tier; /* static string */
} lamina_stats;

lamina_status lamina_context_get_stats(const lamina_context* ctx, lamina_stats* stats);
void lamina_context_reset_stats(lamina_context* ctx);

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_LAMINA_H_ */
