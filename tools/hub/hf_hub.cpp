// Hugging Face Hub client: repo listing, resumable verified downloads, the
// cache and the one-time conversion (the contract is in hf_hub.h).
#include "tools/hub/hf_hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "lamina/version.h"
#include "loader/format.h"
#include "tools/convert/convert_util.h"
#include "tools/hub/sha.h"
#include "tools/import/json.h"

namespace lamina::hub {
namespace {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ helpers
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// An ETag value without W/ and quotes, lowercased.
std::string NormalizeEtag(std::string v) {
  v = Trim(v);
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return Lower(v);
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<int64_t>(st.st_size);
}

bool MakeDirs(const std::string& path, std::string* err) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      *err = "cannot create directory " + cur + ": " + std::strerror(errno);
      return false;
    }
  }
  if (!convert::IsDir(path)) {
    *err = path + ": not a directory";
    return false;
  }
  return true;
}

bool ReadSmallFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Writes `content` to `path` through a temporary file + rename.
bool WriteFileAtomic(const std::string& path, const std::string& content, std::string* err) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    *err = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string HumanBytes(double b) {
  char buf[32];
  if (b >= 1e9) {
    std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  } else if (b >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", b / 1e6);
  } else if (b >= 1e3) {
    std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f B", b);
  }
  return buf;
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 96 || s == "." || s == ".." || s[0] == '-' || s[0] == '.')
    return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return s.find("..") == std::string::npos;
}

// A relative path of [A-Za-z0-9._-] components, none of them "." or "..".
bool ValidRelPath(const std::string& s) {
  if (s.empty() || s.size() > 512 || s.front() == '/' || s.back() == '/') return false;
  size_t b = 0;
  while (true) {
    const size_t e = s.find('/', b);
    const std::string part = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
          c != '+')
        return false;
    if (e == std::string::npos) return true;
    b = e + 1;
  }
}

// A string usable as one file name: '/' and anything odd become '-'.
std::string FlatName(const std::string& s) {
  std::string o;
  for (char c : s)
    o +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '-';
  return o;
}

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// ------------------------------------------------------------ resolved setup
struct Ctx {
  HfSpec spec;
  std::string endpoint, token, token_source, cache, revision;
  bool quiet = false;
  bool tty = false;
  int max_retries = 5;
  int retry_delay_ms = 1000;
};

void Say(const Ctx& c, const std::string& msg) {
  if (!c.quiet) std::fprintf(stderr, "[hf] %s\n", msg.c_str());
}

std::string HomeDir() { return Env("HOME"); }

void ReadToken(Ctx* c, const HubOptions& o) {
  if (!o.token.empty()) {
    c->token = o.token;
    c->token_source = "the given token";
    return;
  }
  if (!Env("HF_TOKEN").empty()) {
    c->token = Trim(Env("HF_TOKEN"));
    c->token_source = "HF_TOKEN";
    return;
  }
  std::string path = Env("HF_TOKEN_PATH");
  if (path.empty() && !Env("HF_HOME").empty()) path = Env("HF_HOME") + "/token";
  if (path.empty() && !HomeDir().empty()) path = HomeDir() + "/.cache/huggingface/token";
  std::string t;
  if (!path.empty() && ReadSmallFile(path, &t) && !Trim(t).empty()) {
    c->token = Trim(t);
    c->token_source = path;
  }
}

// ------------------------------------------------------------------- HTTP
struct Transfer {
  CURL* curl = nullptr;
  // Sink: a .part file (from `offset`), else `body` in memory (capped).
  std::string part_path;
  int fd = -1;
  int64_t offset = 0;  // bytes already in the .part file when the request started
  int64_t written = 0;
  int write_errno = 0;
  bool range_mismatch = false;
  std::string body;
  size_t body_cap = 64u << 20;
  bool body_overflow = false;
  // Headers (of the last response, except the X-Linked-* of a redirect).
  int64_t range_start = -1;
  std::string error_code, error_message, linked_etag, repo_commit;
  int64_t linked_size = -1;
  // Progress.
  const Ctx* ctx = nullptr;
  std::string label;
  int64_t expected = -1;
  Clock::time_point start, last_draw;
  int64_t last_written = 0;
  double rate = 0;  // bytes/s, smoothed over the last few seconds
  bool drew = false;
};

size_t OnHeader(char* p, size_t size, size_t nmemb, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t n = size * nmemb;
  const std::string line(p, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect)
    t->range_start = -1;
    t->error_code.clear();
    t->error_message.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  const std::string key = Lower(Trim(line.substr(0, colon)));
  const std::string val = Trim(line.substr(colon + 1));
  if (key == "content-range") {
    // "bytes START-END/TOTAL"
    long long a = -1;
    if (std::sscanf(val.c_str(), "bytes %lld-", &a) == 1) t->range_start = a;
  } else if (key == "x-error-code") {
    t->error_code = val;
  } else if (key == "x-error-message") {
    t->error_message = val;
  } else if (key == "x-linked-etag") {
    t->linked_etag = NormalizeEtag(val);
  } else if (key == "x-linked-size") {
    t->linked_size = std::atoll(val.c_str());
  } else if (key == "x-repo-commit") {
    t->repo_commit = Lower(val);
  }
  return n;
}

size_t OnWrite(char* p, size_t size, size_t nmemb, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->part_path.empty() || (code != 200 && code != 206)) {
    if (t->body.size() + n > t->body_cap) {
      t->body_overflow = true;
      return t->part_path.empty() ? 0 : n;  // an error page: keep only its start
    }
    t->body.append(p, n);
    return n;
  }
  if (t->fd < 0) {
    int flags = O_WRONLY | O_CREAT;
    if (code == 206) {
      if (t->range_start != t->offset) {  // not the range we asked for
        t->range_mismatch = true;
        return 0;
      }
      flags |= O_APPEND;
    } else {
      flags |= O_TRUNC;  // the server sent the whole file
      t->offset = 0;
    }
    t->fd = ::open(t->part_path.c_str(), flags, 0644);
    if (t->fd < 0) {
      t->write_errno = errno;
      return 0;
    }
  }
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(t->fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      t->write_errno = w < 0 ? errno : EIO;
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  t->written += static_cast<int64_t>(n);
  return n;
}

void DrawProgress(Transfer* t, bool final) {
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - t->last_draw).count();
  if (dt > 0.05) {  // exponential moving average of the rate between draws
    const double inst = static_cast<double>(t->written - t->last_written) / dt;
    t->rate = t->rate > 0 ? 0.8 * t->rate + 0.2 * inst : inst;
    t->last_written = t->written;
    t->last_draw = now;
  }
  const double done = static_cast<double>(t->offset + t->written);
  const double rate =
      final ? static_cast<double>(t->written) /
                  std::max(1e-3, std::chrono::duration<double>(now - t->start).count())
            : t->rate;
  char line[256];
  if (t->expected > 0) {
    const double left = static_cast<double>(t->expected) - done;
    const int eta = rate > 0 ? static_cast<int>(left / rate) : -1;
    char eta_s[32] = "--:--";
    if (eta >= 0)
      std::snprintf(eta_s, sizeof(eta_s), "%d:%02d:%02d", eta / 3600, eta / 60 % 60, eta % 60);
    std::snprintf(line, sizeof(line), "\r[hf] %-32.32s %3.0f%% %10s / %-10s %10s/s  ETA %s ",
                  t->label.c_str(), 100.0 * done / static_cast<double>(t->expected),
                  HumanBytes(done).c_str(), HumanBytes(static_cast<double>(t->expected)).c_str(),
                  HumanBytes(rate).c_str(), eta_s);
  } else {
    std::snprintf(line, sizeof(line), "\r[hf] %-32.32s %10s %10s/s ", t->label.c_str(),
                  HumanBytes(done).c_str(), HumanBytes(rate).c_str());
  }
  std::fputs(line, stderr);
  if (final) std::fputs("\n", stderr);
  std::fflush(stderr);
  t->drew = true;
}

int OnProgress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(ud);
  if (Clock::now() - t->last_draw >= std::chrono::milliseconds(250)) DrawProgress(t, false);
  return 0;
}

// One easy handle per thread (a handle must not be shared between threads),
// reused across requests so that connections stay alive.
CURL* Handle() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  struct Cleanup {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
  };
  thread_local std::unique_ptr<CURL, Cleanup> curl(curl_easy_init());
  return curl.get();
}

struct HttpResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string curl_message;
};

// GET `url` into t's sink, from byte t->offset when that is > 0.
HttpResult Get(const Ctx& c, const std::string& url, Transfer* t) {
  CURL* curl = Handle();
  HttpResult r;
  if (!curl) {
    r.code = CURLE_FAILED_INIT;
    r.curl_message = "curl_easy_init failed";
    return r;
  }
  curl_easy_reset(curl);
  t->curl = curl;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 20L);
  // A transfer slower than 1 kB/s for 60 s is stalled: abort and retry (resumes).
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "lamina/" LAMINA_VERSION_STRING " (libcurl)");
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
  curl_slist* headers = nullptr;
  // libcurl sends a custom Authorization header only to the first host: a
  // redirect to the LFS CDN does not carry the token.
  if (!c.token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + c.token).c_str());
  if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  std::string range;
  if (t->offset > 0) {
    range = std::to_string(t->offset) + "-";
    curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  }
  t->start = t->last_draw = Clock::now();
  const bool progress = c.tty && !c.quiet && !t->part_path.empty();
  if (progress) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  r.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  r.curl_message = errbuf[0] ? errbuf : curl_easy_strerror(r.code);
  if (!r.curl_message.empty() && r.curl_message.back() == '\n') r.curl_message.pop_back();
  if (progress && t->drew) DrawProgress(t, true);
  if (t->fd >= 0) {
    if (::fsync(t->fd) != 0 && !t->write_errno && errno != EINVAL) t->write_errno = errno;
    ::close(t->fd);
    t->fd = -1;
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  return r;
}

enum class Outcome { kOk, kRetry, kFatal };

bool IsNetworkDown(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT ||
         code == CURLE_COULDNT_RESOLVE_PROXY;
}

bool IsTransient(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

std::string GatedMessage(const Ctx& c, long status, const Transfer& t) {
  const std::string page = c.endpoint + "/" + c.spec.repo;
  std::string m = c.spec.repo + ": access denied (HTTP " + std::to_string(status) +
                  (t.error_message.empty() ? "" : ": " + t.error_message) + ").\n";
  if (c.token.empty()) {
    m += "The repository is gated or private and no Hugging Face token is set.\n";
  } else {
    m += "The token from " + c.token_source + " was refused or has no access to " + c.spec.repo +
         " (yet).\n";
  }
  m += "To get access: log in at " + c.endpoint + ", open " + page +
       " and accept the license (Meta's repos grant access after a review, usually within "
       "hours); create a read token at " +
       c.endpoint +
       "/settings/tokens and set HF_TOKEN=hf_... (or save it in ~/.cache/huggingface/token).\n"
       "An ungated copy of Llama 3.2 1B Instruct needs no token: -hf "
       "unsloth/Llama-3.2-1B-Instruct";
  return m;
}

// Classifies a finished request; *err gets the message of a failure.
Outcome Classify(const Ctx& c, const HttpResult& r, const Transfer& t, const std::string& what,
                 std::string* err) {
  if (t.write_errno) {
    const std::string dir = convert::DirName(t.part_path);
    if (t.write_errno == ENOSPC || t.write_errno == EDQUOT) {
      *err = "disk full while downloading " + what + " into " + dir + " (" +
             std::strerror(t.write_errno) +
             "). Free some space (or point LAMINA_CACHE at a larger disk) and run again: the "
             "download resumes where it stopped.";
    } else {
      *err = "cannot write " + t.part_path + ": " + std::strerror(t.write_errno);
    }
    return Outcome::kFatal;
  }
  if (t.body_overflow && t.part_path.empty()) {
    *err = what + ": the server's answer is larger than " +
           HumanBytes(static_cast<double>(t.body_cap)) + "; is HF_ENDPOINT a Hugging Face hub?";
    return Outcome::kFatal;
  }
  if (r.code == CURLE_OK && (r.status == 200 || r.status == 206)) return Outcome::kOk;
  if (r.code != CURLE_OK && r.code != CURLE_WRITE_ERROR) {
    if (IsNetworkDown(r.code)) {
      *err = "cannot reach " + c.endpoint + " (" + r.curl_message +
             "): no network? Check the connection, a proxy (https_proxy) or HF_ENDPOINT. "
             "Models already in the cache (" +
             c.cache + ") run offline.";
      return Outcome::kFatal;
    }
    *err = what + ": " + r.curl_message;
    if (IsTransient(r.code)) return Outcome::kRetry;
    if (r.code == CURLE_PEER_FAILED_VERIFICATION || r.code == CURLE_SSL_CACERT_BADFILE)
      *err += " (TLS certificate problem: is ca-certificates installed, is the clock right?)";
    return Outcome::kFatal;
  }
  if (t.range_mismatch) {
    *err = what + ": the server answered the range request with another range";
    return Outcome::kRetry;
  }
  const long s = r.status;
  const std::string srv = t.error_message.empty() ? "" : " (" + t.error_message + ")";
  if (t.error_code == "RevisionNotFound") {
    *err = "no such revision '" + c.revision + "' in " + c.spec.repo + srv;
    return Outcome::kFatal;
  }
  if (t.error_code == "RepoNotFound" || (s == 404 && what.rfind("listing", 0) == 0)) {
    *err = "no such repo: " + c.spec.repo + " on " + c.endpoint + srv +
           ". Check the name (ORG/REPO as in the model page's URL); a private repo needs "
           "HF_TOKEN.";
    return Outcome::kFatal;
  }
  if (t.error_code == "EntryNotFound" || s == 404) {
    *err = "no such file in " + c.spec.repo + "@" + c.revision + ": " + what + srv;
    return Outcome::kFatal;
  }
  if (t.error_code == "GatedRepo" || s == 401 || s == 403) {
    *err = GatedMessage(c, s, t);
    return Outcome::kFatal;
  }
  *err = what + ": HTTP " + std::to_string(s) + srv;
  if (s == 416) return Outcome::kRetry;  // stale .part: the caller restarts it
  if (s >= 500 || s == 429 || s == 408) return Outcome::kRetry;
  return Outcome::kFatal;
}

void Backoff(const Ctx& c, int attempt, const std::string& why) {
  const int64_t ms = std::min<int64_t>(int64_t{c.retry_delay_ms} << attempt, 60000);
  Say(c, why + "; retrying in " + std::to_string(ms / 1000.0).substr(0, 4) + " s (retry " +
             std::to_string(attempt + 1) + " of " + std::to_string(c.max_retries) + ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string EscapePath(const std::string& path) {
  std::string out;
  size_t b = 0;
  while (true) {
    const size_t e = path.find('/', b);
    out += Escape(path.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return out;
    out += '/';
    b = e + 1;
  }
}

// ------------------------------------------------------------ repo listing
struct RemoteFile {
  std::string name;
  int64_t size = -1;
  std::string sha256;   // LFS files
  std::string blob_id;  // git blob sha1 (for non-LFS files: of the content)
};

struct RepoInfo {
  std::string sha;
  std::vector<RemoteFile> files;
  const RemoteFile* Find(const std::string& name) const {
    for (const auto& f : files)
      if (f.name == name) return &f;
    return nullptr;
  }
};

bool ListRepo(const Ctx& c, RepoInfo* info, std::string* err) {
  const std::string url =
      c.endpoint + "/api/models/" + c.spec.repo + "/revision/" + Escape(c.revision) + "?blobs=True";
  Transfer t;
  for (int attempt = 0;; ++attempt) {
    t = Transfer();
    t.ctx = &c;
    const HttpResult r = Get(c, url, &t);
    const Outcome o = Classify(c, r, t, "listing " + c.spec.repo + "@" + c.revision, err);
    if (o == Outcome::kOk) break;
    if (o == Outcome::kFatal || attempt >= c.max_retries) return false;
    Backoff(c, attempt, *err);
  }
  json::Value root;
  std::string jerr;
  if (!json::Parse(t.body, &root, &jerr) || !root.is_object()) {
    *err = url + ": not a model listing (" + (jerr.empty() ? "not a JSON object" : jerr) +
           "); does HF_ENDPOINT point at a Hugging Face hub?";
    return false;
  }
  const json::Value* sha = root.Find("sha");
  if (sha && sha->is_string() && IsHex(sha->as_string(), 40)) info->sha = Lower(sha->as_string());
  if (info->sha.empty()) {
    *err = url + ": the listing has no commit sha";
    return false;
  }
  const json::Value* sib = root.Find("siblings");
  if (!sib || !sib->is_array()) {
    *err = url + ": the listing has no 'siblings' (file list)";
    return false;
  }
  for (const auto& s : sib->items()) {
    const json::Value* name = s.Find("rfilename");
    if (!name || !name->is_string()) continue;
    RemoteFile f;
    f.name = name->as_string();
    int64_t v;
    if (const json::Value* size = s.Find("size"); size && size->as_int64(&v) && v >= 0) f.size = v;
    if (const json::Value* b = s.Find("blobId"); b && b->is_string() && IsHex(b->as_string(), 40))
      f.blob_id = Lower(b->as_string());
    if (const json::Value* lfs = s.Find("lfs"); lfs && lfs->is_object()) {
      if (const json::Value* h = lfs->Find("sha256");
          h && h->is_string() && IsHex(h->as_string(), 64))
        f.sha256 = Lower(h->as_string());
      if (const json::Value* ls = lfs->Find("size"); ls && ls->as_int64(&v) && v >= 0) f.size = v;
      f.blob_id.clear();  // the blob is the LFS pointer, not the content
    }
    info->files.push_back(f);
  }
  return true;
}

// ---------------------------------------------------------------- download
// Checks a finished .part against the listing: its size, and the sha256 of an
// LFS file (the listing's lfs.sha256 = the LFS pointer's oid; else the
// X-Linked-Etag of the transfer) or the git blob id of any other file.
bool Verify(const std::string& part, const RemoteFile& f, const std::string& linked_etag,
            std::string* what, std::string* err) {
  const int64_t size = FileSize(part);
  if (f.size >= 0 && size != f.size) {
    *what = "size " + std::to_string(size) + " bytes, expected " + std::to_string(f.size);
    return false;
  }
  const std::string want_sha256 = !f.sha256.empty()        ? f.sha256
                                  : IsHex(linked_etag, 64) ? linked_etag
                                                           : "";
  const bool lfs = !want_sha256.empty();
  std::string sha256, blob;
  if (!HashFile(part, lfs ? &sha256 : nullptr, lfs ? nullptr : &blob, err)) return false;
  err->clear();
  if (lfs && sha256 != want_sha256) {
    *what = "sha256 " + sha256 + ", expected " + want_sha256;
    return false;
  }
  if (!lfs && !f.blob_id.empty() && blob != f.blob_id) {
    *what = "git blob id " + blob + ", expected " + f.blob_id;
    return false;
  }
  return true;
}

bool Download(const Ctx& c, const std::string& sha, const RemoteFile& f, const std::string& dest,
              std::string* err) {
  const std::string part = dest + ".part";
  if (!MakeDirs(convert::DirName(dest), err)) return false;
  const std::string url =
      c.endpoint + "/" + c.spec.repo + "/resolve/" + sha + "/" + EscapePath(f.name);
  bool refetched_after_mismatch = false;
  if (!c.tty) {
    Say(c, "downloading " + f.name + (f.size >= 0 ? " (" + HumanBytes(f.size) + ")" : ""));
  }
  for (int attempt = 0;;) {
    Transfer t;
    t.ctx = &c;
    t.part_path = part;
    t.label = f.name;
    t.expected = f.size;
    t.body_cap = 4096;
    int64_t have = FileSize(part);
    if (have < 0 || (f.size >= 0 && have > f.size)) {
      ::unlink(part.c_str());
      have = 0;
    }
    t.offset = have;
    Outcome o = Outcome::kOk;
    if (f.size >= 0 && have == f.size && have > 0) {
      // A complete .part from an earlier run: verify without a request.
    } else {
      if (have > 0) Say(c, f.name + ": resuming at " + HumanBytes(static_cast<double>(have)));
      const HttpResult r = Get(c, url, &t);
      o = Classify(c, r, t, f.name, err);
      if (o != Outcome::kOk && r.code == CURLE_OK && r.status == 416) ::unlink(part.c_str());
      if (o == Outcome::kOk && FileSize(part) < 0) {
        // An empty file: the write callback never ran.
        if (!WriteFileAtomic(part, "", err)) return false;
      }
    }
    if (o == Outcome::kOk) {
      std::string what;
      err->clear();
      const int64_t got = FileSize(part);
      if (f.size >= 0 && got < f.size) {
        *err = f.name + ": transfer ended at " + std::to_string(got) + " of " +
               std::to_string(f.size) + " bytes";
        o = Outcome::kRetry;
      } else {
        if (got >= (int64_t{64} << 20)) Say(c, f.name + ": checking its sha256");
        if (Verify(part, f, t.linked_etag, &what, err)) {
          if (::rename(part.c_str(), dest.c_str()) != 0) {
            *err = "cannot rename " + part + ": " + std::strerror(errno);
            return false;
          }
          if (!c.tty) Say(c, f.name + ": ok");
          return true;
        }
        if (!err->empty()) return false;  // could not read it back
        ::unlink(part.c_str());
        *err = f.name + ": downloaded file does not match the repository (" + what +
               "); it was deleted";
        if (refetched_after_mismatch) {
          *err += " again after a second download: refusing it (a corrupting proxy or mirror?)";
          return false;
        }
        Say(c, *err + "; downloading it again");
        refetched_after_mismatch = true;
        continue;  // not counted as a transient retry
      }
    }
    if (o == Outcome::kFatal || attempt >= c.max_retries) {
      if (o == Outcome::kRetry) *err += " (gave up after " + std::to_string(attempt) + " retries)";
      return false;
    }
    Backoff(c, attempt, *err);
    ++attempt;
  }
}

// ------------------------------------------------------------ file choice
struct Plan {
  std::string kind;   // hf | meta | gguf
  std::string input;  // relative to the snapshot: "." (hf), a directory (meta), a file (gguf)
  std::vector<const RemoteFile*> files;
};

bool PlanMeta(const RepoInfo& info, const std::string& dir, Plan* p) {
  const std::string pre = dir == "." ? "" : dir + "/";
  const RemoteFile* params = info.Find(pre + "params.json");
  const RemoteFile* pth = info.Find(pre + "consolidated.00.pth");
  if (!params || !pth) return false;
  p->kind = "meta";
  p->input = dir;
  p->files = {params, pth};
  if (const RemoteFile* tok = info.Find(pre + "tokenizer.model")) p->files.push_back(tok);
  return true;
}

std::string GgufList(const RepoInfo& info) {
  std::string s;
  for (const auto& f : info.files)
    if (EndsWith(f.name, ".gguf")) s += "\n  " + f.name;
  return s;
}

// Picks the files of spec.file (or the best layout of the repo). The
// safetensors shards come from the index, which PlanHf's caller downloads first.
bool PlanFiles(const Ctx& c, const RepoInfo& info, Plan* p, std::string* err) {
  const std::string& want = c.spec.file;
  const std::string at = c.spec.repo + "@" + c.revision;
  if (!want.empty()) {
    if (EndsWith(want, ".gguf")) {
      const RemoteFile* f = info.Find(want);
      if (!f) {
        const std::string list = GgufList(info);
        *err = "no such file in " + at + ": " + want +
               (list.empty() ? " (the repo has no .gguf files)" : "; its .gguf files:" + list);
        return false;
      }
      p->kind = "gguf";
      p->input = want;
      p->files = {f};
      return true;
    }
    if (PlanMeta(info, want, p)) return true;
    *err = (info.Find(want) ? "unsupported file " : "no such file or directory ") + want + " in " +
           at + ": -hf ORG/REPO:FILE takes a .gguf file or a directory holding a Meta " +
           "checkpoint (params.json + consolidated.00.pth), e.g. ORG/REPO:original";
    return false;
  }
  bool root_st = false;
  for (const auto& f : info.files)
    if (f.name.find('/') == std::string::npos && EndsWith(f.name, ".safetensors")) root_st = true;
  if (info.Find("config.json") && root_st) {
    p->kind = "hf";
    p->input = ".";
    for (const char* n : {"config.json", "generation_config.json", "tokenizer.json",
                          "tokenizer_config.json", "model.safetensors.index.json"})
      if (const RemoteFile* f = info.Find(n)) p->files.push_back(f);
    if (!info.Find("tokenizer.json"))
      if (const RemoteFile* f = info.Find("original/tokenizer.model")) p->files.push_back(f);
    return true;
  }
  if (PlanMeta(info, "original", p) || PlanMeta(info, ".", p)) return true;
  std::vector<const RemoteFile*> ggufs;
  for (const auto& f : info.files)
    if (EndsWith(f.name, ".gguf")) ggufs.push_back(&f);
  if (ggufs.size() == 1) {
    p->kind = "gguf";
    p->input = ggufs[0]->name;
    p->files = {ggufs[0]};
    return true;
  }
  if (ggufs.size() > 1) {
    *err = at + " holds several .gguf files; pick one with -hf " + c.spec.repo +
           ":FILE:" + GgufList(info);
    return false;
  }
  *err = at +
         " has no Llama checkpoint lamina can read (config.json + *.safetensors, "
         "original/consolidated.00.pth + params.json, or a .gguf file)";
  return false;
}

// The safetensors files of an HF layout: the index's weight_map values, else
// model.safetensors, else model-*-of-*.safetensors.
bool AddShards(const Ctx& c, const RepoInfo& info, const std::string& snap, Plan* p,
               std::string* err) {
  std::vector<std::string> names;
  if (info.Find("model.safetensors.index.json")) {
    json::Value idx;
    if (!json::ParseFile(snap + "/model.safetensors.index.json", &idx, err)) return false;
    const json::Value* wm = idx.Find("weight_map");
    if (!wm || !wm->is_object()) {
      *err = c.spec.repo + ": model.safetensors.index.json has no weight_map";
      return false;
    }
    std::set<std::string> seen;
    for (const auto& m : wm->members()) {
      if (!m.second.is_string() || !ValidRelPath(m.second.as_string())) {
        *err = c.spec.repo + ": model.safetensors.index.json: bad shard name for " + m.first;
        return false;
      }
      if (seen.insert(m.second.as_string()).second) names.push_back(m.second.as_string());
    }
  } else if (info.Find("model.safetensors")) {
    names.push_back("model.safetensors");
  } else {
    for (const auto& f : info.files)
      if (f.name.rfind("model-", 0) == 0 && EndsWith(f.name, ".safetensors") &&
          f.name.find('/') == std::string::npos)
        names.push_back(f.name);
  }
  if (names.empty()) {
    *err = c.spec.repo + ": no model.safetensors, shards or index";
    return false;
  }
  for (const auto& n : names) {
    const RemoteFile* f = info.Find(n);
    if (!f) {
      *err =
          c.spec.repo + ": model.safetensors.index.json names " + n + ", which is not in the repo";
      return false;
    }
    p->files.push_back(f);
  }
  return true;
}

// --------------------------------------------------------------- manifest
std::string ManifestText(const Plan& p) {
  std::string s = "lamina-hf-manifest 1\nkind " + p.kind + "\ninput " + p.input + "\n";
  for (const RemoteFile* f : p.files) s += "file " + std::to_string(f->size) + " " + f->name + "\n";
  return s;
}

// True when the manifest exists and every file it names is in the snapshot
// with its size (they were verified when downloaded).
bool ReadManifest(const std::string& path, const std::string& snap, std::string* kind,
                  std::string* input) {
  std::string text;
  if (!ReadSmallFile(path, &text)) return false;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != "lamina-hf-manifest 1") return false;
  bool any = false;
  while (std::getline(in, line)) {
    if (line.rfind("kind ", 0) == 0) {
      *kind = line.substr(5);
    } else if (line.rfind("input ", 0) == 0) {
      *input = line.substr(6);
    } else if (line.rfind("file ", 0) == 0) {
      const size_t sp = line.find(' ', 5);
      if (sp == std::string::npos) return false;
      const int64_t size = std::atoll(line.substr(5, sp - 5).c_str());
      const std::string name = line.substr(sp + 1);
      if (!ValidRelPath(name)) return false;
      const int64_t have = FileSize(snap + "/" + name);
      if (have < 0 || (size >= 0 && have != size)) return false;
      any = true;
    }
  }
  return any && !kind->empty() && !input->empty();
}

bool Convert(const Ctx& c, const HubOptions& o, const std::string& kind, const std::string& input,
             const std::string& out, std::string* err) {
  if (!MakeDirs(convert::DirName(out), err)) return false;
  // lamina-convert's pipeline: the same file as `lamina-convert <input>` with
  // the same options (default rotations, --quant auto, ...).
  convert::PipelineOptions p = o.convert;
  p.input = input;
  p.synthetic.clear();
  p.convert.quiet = p.convert.quiet || o.quiet;
  Say(c, "converting " + input + " (" + kind + ", weights " + p.convert.weights + ") -> " + out);
  bool ok;
  if (kind == "hf" || kind == "meta" || kind == "gguf") {
    ok = convert::ConvertPipeline(p, out, err);
  } else {
    *err = "unknown layout '" + kind + "' in the cache manifest";
    ok = false;
  }
  if (!ok) *err = "converting " + c.spec.repo + ": " + *err;
  return ok;
}

class RepoLock {
 public:
  RepoLock(const Ctx& c, const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;  // best effort (read-only cache: the writes fail later, clearly)
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      Say(c, "waiting for another lamina process working on " + c.spec.repo);
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~RepoLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  int fd_ = -1;
};

int EnvInt(const char* name, int fallback) {
  const std::string v = Env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  return (end && !*end && x >= 0 && x <= 1000000) ? static_cast<int>(x) : fallback;
}

}  // namespace

bool ConvertKey(const convert::PipelineOptions& p, std::string* key, std::string* err) {
  using Mode = convert::GptqSource::Mode;
  const convert::ConvertOptions& co = p.convert;
  std::string calib_sha;
  if (p.gptq.mode == Mode::kFile && !HashFile(p.gptq.file, &calib_sha, nullptr, err)) return false;
  const convert::CalibOptions& cal = p.gptq.copts;
  std::ostringstream all;
  all << "output=" << co.output << "\nembedding=" << co.embedding << "\nq4_scales=" << co.q4_scales
      << "\ntokenizer=" << (co.no_tokenizer ? "none" : co.tokenizer_path)
      << "\nq4=" << convert::Q4MethodName(co.q4_method) << "\nseed=" << p.seed
      << "\nrotate=" << (p.rotate ? "r" + convert::RotationsTag(*p.rotate) : "default")
      << "\ngptq=" << static_cast<int>(p.gptq.mode);
  if (p.gptq.mode == Mode::kAuto || p.gptq.mode == Mode::kSelf)
    all << "\nself=" << p.gptq.self.n_tokens << "," << p.gptq.self.temperature << ","
        << p.gptq.self.top_p << "," << p.gptq.self.min_p;
  if (p.gptq.mode != Mode::kNone)
    all << "\ncalib=" << calib_sha << "," << cal.window << "," << cal.max_tokens << "," << cal.damp
        << "," << cal.act_order;
  Sha256 h;
  const std::string text = all.str();
  h.Update(text.data(), text.size());
  *key = FlatName(co.weights) + "-g" + std::to_string(co.group_size) + "-f" +
         std::to_string(format::kVersionMajor) + "." + std::to_string(format::kVersionMinor) + "-" +
         h.HexDigest().substr(0, 12);
  return true;
}

bool ParseHfSpec(const std::string& spec, HfSpec* out, std::string* err) {
  *out = HfSpec();
  std::string s = spec;
  // Peels "<sep>VALUE" off the end: ":FILE" first, then "@REVISION".
  auto peel = [&](char sep, std::string* value, const char* what) {
    const size_t p = s.find(sep);
    if (p == std::string::npos) return true;
    *value = s.substr(p + 1);
    s = s.substr(0, p);
    if (ValidRelPath(*value)) return true;
    *err = std::string("bad ") + what + " '" + *value + "'";
    return false;
  };
  if (!peel(':', &out->file, "file name") || !peel('@', &out->revision, "revision")) return false;
  const size_t slash = s.find('/');
  if (slash == std::string::npos || !ValidName(s.substr(0, slash)) ||
      !ValidName(s.substr(slash + 1))) {
    *err = "'" + spec +
           "' is not a model name: expected ORG/REPO[@REVISION][:FILE], e.g. "
           "unsloth/Llama-3.2-1B-Instruct or "
           "ORG/REPO:model-Q4_0.gguf";
    return false;
  }
  out->repo = s;
  return true;
}

bool ResolveHfModel(const std::string& spec, const HubOptions& o, std::string* lamina_path,
                    std::string* err) {
  Ctx c;
  if (!ParseHfSpec(spec, &c.spec, err)) return false;
  c.endpoint = !o.endpoint.empty() ? o.endpoint : Env("HF_ENDPOINT");
  if (c.endpoint.empty()) c.endpoint = "https://huggingface.co";
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  c.revision = !c.spec.revision.empty() ? c.spec.revision
               : !o.revision.empty()    ? o.revision
                                        : "main";
  c.cache = !o.cache_dir.empty() ? o.cache_dir : Env("LAMINA_CACHE");
  if (c.cache.empty() && !Env("XDG_CACHE_HOME").empty())
    c.cache = Env("XDG_CACHE_HOME") + "/lamina";
  if (c.cache.empty() && !HomeDir().empty()) c.cache = HomeDir() + "/.cache/lamina";
  if (c.cache.empty()) {
    *err = "no cache directory: set LAMINA_CACHE (or HOME)";
    return false;
  }
  c.quiet = o.quiet;
  c.tty = ::isatty(STDERR_FILENO) != 0;
  c.max_retries = o.max_retries >= 0 ? o.max_retries : EnvInt("LAMINA_HF_RETRIES", 5);
  c.retry_delay_ms =
      o.retry_delay_ms >= 0 ? o.retry_delay_ms : EnvInt("LAMINA_HF_RETRY_DELAY_MS", 1000);
  ReadToken(&c, o);

  const std::string flat = FlatName(c.spec.repo.substr(0, c.spec.repo.find('/'))) + "--" +
                           FlatName(c.spec.repo.substr(c.spec.repo.find('/') + 1));
  const std::string repo_dir = c.cache + "/hf/" + flat;
  if (!MakeDirs(repo_dir + "/refs", err)) return false;
  RepoLock lock(c, repo_dir + "/.lock");

  const std::string sel = c.spec.file.empty() ? "model" : FlatName(c.spec.file);
  const std::string ref_path = repo_dir + "/refs/" + FlatName(c.revision);
  std::string key;
  if (!ConvertKey(o.convert, &key, err)) return false;
  auto model_path = [&](const std::string& sha) {
    return c.cache + "/models/" + flat + "/" + sha + "/" + sel + "-" + key + ".lamina";
  };

  // Cached: no request at all.
  std::string sha;
  if (ReadSmallFile(ref_path, &sha) && IsHex(Trim(sha), 40)) {
    sha = Trim(sha);
    const std::string model = model_path(sha);
    if (FileSize(model) > 0) {
      Say(c, c.spec.repo + "@" + c.revision + " (" + sha.substr(0, 12) + "): cached " + model);
      *lamina_path = model;
      return true;
    }
    const std::string snap = repo_dir + "/snapshots/" + sha;
    std::string kind, input;
    if (ReadManifest(snap + "/.lamina-" + sel + ".manifest", snap, &kind, &input)) {
      Say(c, c.spec.repo + "@" + c.revision + " (" + sha.substr(0, 12) +
                 "): files cached, converting");
      if (!Convert(c, o, kind, input == "." ? snap : snap + "/" + input, model, err)) return false;
      *lamina_path = model;
      return true;
    }
  }

  const std::string off = Lower(Env("HF_HUB_OFFLINE"));
  if (o.offline || off == "1" || off == "true" || off == "yes" || off == "on") {
    *err = c.spec.repo + "@" + c.revision + " is not in the cache (" + c.cache +
           ") and downloads are off (" + (o.offline ? "offline" : "HF_HUB_OFFLINE=" + off) + ")";
    return false;
  }
  RepoInfo info;
  if (!ListRepo(c, &info, err)) return false;
  sha = info.sha;
  Plan plan;
  if (!PlanFiles(c, info, &plan, err)) return false;
  const std::string snap = repo_dir + "/snapshots/" + sha;
  if (!MakeDirs(snap, err)) return false;
  Say(c, c.spec.repo + "@" + c.revision + " is commit " + sha.substr(0, 12) + " (" + plan.kind +
             " layout)");

  // Free space for what is still missing (an HF layout's shards are known
  // only from its index: every root *.safetensors counts, an upper bound).
  std::vector<const RemoteFile*> sized = plan.files;
  if (plan.kind == "hf")
    for (const auto& f : info.files)
      if (f.name.find('/') == std::string::npos && EndsWith(f.name, ".safetensors"))
        sized.push_back(&f);
  int64_t need = 0;
  for (const RemoteFile* f : sized) {
    const int64_t have = FileSize(snap + "/" + f->name);
    if (f->size <= 0 || (have >= 0 && have == f->size)) continue;
    need += f->size - std::max<int64_t>(0, FileSize(snap + "/" + f->name + ".part"));
  }
  struct statvfs vfs;
  if (need > 0 && ::statvfs(snap.c_str(), &vfs) == 0) {
    const double avail = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
    if (avail < static_cast<double>(need)) {
      *err = "not enough disk space in " + c.cache + ": the download needs up to " +
             HumanBytes(static_cast<double>(need)) + ", " + HumanBytes(avail) +
             " is free. Free some space or set LAMINA_CACHE to a larger disk.";
      return false;
    }
  }
  if (need > 0) Say(c, "downloading " + HumanBytes(static_cast<double>(need)) + " into " + snap);
  // Downloads what is missing; HF first gets its index to learn the shards.
  auto fetch = [&](const std::vector<const RemoteFile*>& files) {
    for (const RemoteFile* f : files) {
      if (!ValidRelPath(f->name)) {
        *err = c.spec.repo + ": refusing the file name '" + f->name + "'";
        return false;
      }
      const std::string dest = snap + "/" + f->name;
      const int64_t have = FileSize(dest);
      if (have >= 0 && (f->size < 0 || have == f->size)) continue;
      if (!Download(c, sha, *f, dest, err)) return false;
    }
    return true;
  };
  if (!fetch(plan.files)) return false;
  if (plan.kind == "hf") {
    const size_t before = plan.files.size();
    if (!AddShards(c, info, snap, &plan, err)) return false;
    if (!fetch(std::vector<const RemoteFile*>(plan.files.begin() + static_cast<long>(before),
                                              plan.files.end())))
      return false;
  }
  if (!WriteFileAtomic(snap + "/.lamina-" + sel + ".manifest", ManifestText(plan), err) ||
      !WriteFileAtomic(ref_path, sha + "\n", err))
    return false;

  const std::string model = model_path(sha);
  const std::string input = plan.input == "." ? snap : snap + "/" + plan.input;
  if (FileSize(model) <= 0 && !Convert(c, o, plan.kind, input, model, err)) return false;
  *lamina_path = model;
  return true;
}

}  // namespace lamina::hub
