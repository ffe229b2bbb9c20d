// Memory aligned to a cache line for the kernels' working buffers. std::vector's default allocator
// gives 16 bytes (a large block from malloc sits 16 bytes past a page), so a 32- or 64-byte vector
// load at a multiple of its width would straddle two cache lines, which costs a second access on
// every load of a register-wide loop.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace ee {

template <class T>
struct CacheLineAllocator {
    using value_type = T;
    static constexpr std::size_t ALIGN = 64;
    CacheLineAllocator() noexcept = default;
    template <class U>
    CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(ALIGN))); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(ALIGN)); }
    template <class U>
    bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

// A vector whose data() starts on a cache line.
template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace ee
