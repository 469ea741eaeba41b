// Hugging Face Hub client for the tools (llama-run -hf, lamina-convert -hf,
// lamina-server -hf): downloads a model repository over HTTPS (libcurl),
// converts it once with lamina-convert's pipeline (tools/convert/pipeline.h:
// the same file as lamina-convert on the download) and caches both. Linked into the
// tools and tests only; liblamina.a never depends on libcurl.
#pragma once

#include <string>

#include "tools/convert/pipeline.h"

namespace lamina::hub {

struct HubOptions {
  /// Server. Empty: $HF_ENDPOINT, else https://huggingface.co. Any mirror that
  /// serves /api/models/{repo}/revision/{rev} and /{repo}/resolve/{rev}/{file}.
  std::string endpoint;
  /// Access token for gated / private repos. Empty: $HF_TOKEN, else the file
  /// $HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token.
  /// Sent only to the endpoint's host (libcurl drops it on a cross-host redirect).
  std::string token;
  /// Cache root. Empty: $LAMINA_CACHE, else $XDG_CACHE_HOME/lamina, else ~/.cache/lamina.
  std::string cache_dir;
  /// Branch, tag or commit; used when the spec has no "@REV". Empty: "main".
  std::string revision;
  /// Conversion of the download, by lamina-convert's pipeline with its
  /// defaults (input and synthetic are ignored); every option that changes
  /// the file is part of the cache key of the .lamina.
  convert::PipelineOptions convert;
  /// No status lines or progress bar on stderr (errors still go to *err).
  bool quiet = false;
  /// Cache only: no network request; a model not in the cache is an error.
  /// Also set by $HF_HUB_OFFLINE=1 (as for huggingface_hub).
  bool offline = false;
  /// Transient failures (HTTP 5xx/429, connection reset, stalled or cut
  /// transfers) are retried this many times with exponential backoff
  /// (retry_delay_ms, then x2 each time). -1: $LAMINA_HF_RETRIES, else 5.
  int max_retries = -1;
  /// First backoff delay. -1: $LAMINA_HF_RETRY_DELAY_MS, else 1000.
  int retry_delay_ms = -1;
};

/// Resolves `spec` = "ORG/REPO[@REV][:FILE]" to a converted .lamina file in the
/// cache and stores its path in *lamina_path.
///
///   ORG/REPO                Hugging Face layout (config.json, *.safetensors [+
///                           model.safetensors.index.json], tokenizer.json,
///                           tokenizer_config.json, generation_config.json); else
///                           Meta's original/ (consolidated.00.pth, params.json,
///                           tokenizer.model); else the repo's only .gguf
///   ORG/REPO:FILE.gguf      that GGUF file
///   ORG/REPO:original       Meta's checkpoint in original/
///
/// The file list, sizes and hashes come from GET {endpoint}/api/models/{repo}/
/// revision/{rev}?blobs=True (siblings[].rfilename/size/blobId/lfs.sha256, and
/// the commit "sha"); files are fetched from {endpoint}/{repo}/resolve/{sha}/
/// {file} (pinned to the commit, so a push during the download cannot mix
/// revisions). Each file goes to a ".part" file (resumed with an HTTP Range
/// after an interruption), is checked against the size and the sha256 of LFS
/// files (lfs.sha256, the LFS pointer's oid; X-Linked-Etag when the listing
/// lacks it) or the git blob id of the others (sha1 of "blob <size>\0" +
/// content; the ETag is not used), then renamed into place.
///
/// Cache layout (under HubOptions::cache_dir):
///   hf/ORG--REPO/refs/REV                   the commit REV resolved to
///   hf/ORG--REPO/snapshots/SHA/FILE         verified downloads
///   hf/ORG--REPO/snapshots/SHA/.lamina-SEL.manifest   the complete file set
///   models/ORG--REPO/SHA/SEL-KEY.lamina     the conversion (KEY: weights,
///                                           group size, format, a hash of
///                                           the other options)
/// When refs/REV and the .lamina exist, the call makes no network request and
/// does not convert (works offline). To pick up a newer commit of a branch,
/// delete hf/ORG--REPO/refs/REV. Thread-safe; concurrent callers on one repo
/// (threads or processes) are serialised by a lock file (flock) in its cache
/// directory. Status lines and, on a terminal, a progress bar go to stderr.
///
/// Returns false and a one-paragraph message in *err on failure: a gated or
/// private repo (HTTP 401/403: how to get access and set HF_TOKEN), no such
/// repo / revision / file (404), no network (with the endpoint), a checksum or
/// size mismatch after a retry, a full disk, or a conversion error.
bool ResolveHfModel(const std::string& spec, const HubOptions& opts, std::string* lamina_path,
                    std::string* err);

/// The parts of a spec "ORG/REPO[@REV][:FILE]". False + *err when malformed
/// (names are [A-Za-z0-9._-], FILE a relative path without "..").
struct HfSpec {
  std::string repo;      // "ORG/REPO"
  std::string revision;  // empty when not given
  std::string file;      // empty when not given
};
bool ParseHfSpec(const std::string& spec, HfSpec* out, std::string* err);

/// The part of the cached .lamina's name that stands for the conversion
/// options: "<weights>-g<group>-f<format>-<12 hex digits>", the digits a
/// sha256 of every other option that changes the file (the --calib text by
/// its content), so a conversion under other options, or one cached before an
/// option existed, is never reused. False + *err when the --calib file
/// cannot be read.
bool ConvertKey(const convert::PipelineOptions& p, std::string* key, std::string* err);

}  // namespace lamina::hub
