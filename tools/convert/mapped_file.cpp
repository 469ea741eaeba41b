#include "tools/convert/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lamina::convert {

MappedFile::~MappedFile() {
  if (data_ && size_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

bool MappedFile::Open(const std::string& path, std::string* err) {
  path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *err = path + ": not a regular file";
    ::close(fd);
    return false;
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    data_ = nullptr;
    return true;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    *err = path + ": mmap failed: " + std::strerror(e);
    size_ = 0;
    return false;
  }
  data_ = static_cast<const uint8_t*>(p);
  return true;
}

void MappedFile::Release(uint64_t off, uint64_t n) const {
  if (!data_ || off >= size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t b = (off + page - 1) / page * page;
  const uint64_t e = std::min<uint64_t>(off + n, size_) / page * page;
  if (e > b) (void)::madvise(const_cast<uint8_t*>(data_) + b, e - b, MADV_DONTNEED);
}

}  // namespace lamina::convert
