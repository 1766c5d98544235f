// Every allocation through operator new of at least kLargeBytes starts on a 64-byte boundary: one cache line, one
// AVX-512 vector, what oneDNN's kernels assume for their fastest loads and stores. glibc's malloc gives 16 bytes;
// an LM head writing its logits from a 16-byte-aligned buffer splits every store across two cache lines and runs
// about 12% slower (docs/performance.md, "Where the bytes go"). Replacing the global operator new aligns every
// std::vector the engine makes (activations, weights, gradients, scratch) without a custom allocator type in each
// signature.
//
// Linked into each executable (not the engine library) so that the replacement is explicit. Memory is released
// with free(), which takes what posix_memalign returns; the delete operators are replaced alongside so that a
// sanitizer sees matching allocation and release functions.
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kAlignment = 64;
constexpr std::size_t kLargeBytes = 4096;  // smaller blocks keep malloc's packing

void* allocate(std::size_t n) noexcept {
  if (n < kLargeBytes) return std::malloc(n == 0 ? 1 : n);
  void* p = nullptr;
  return posix_memalign(&p, kAlignment, n) == 0 ? p : nullptr;
}

void* allocate_or_throw(std::size_t n) {
  for (;;) {
    if (void* p = allocate(n)) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t n) { return allocate_or_throw(n); }
void* operator new[](std::size_t n) { return allocate_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
