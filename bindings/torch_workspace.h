// Large operator outputs that a step allocates afresh every call, recycled once nobody holds them.
// glibc maps every allocation above 128 KB from the kernel anew and returns it on free, so a
// fresh 8 MB tensor per step costs ~2,000 page faults (measured: the batched MLP's activation cache
// for 64 walkers, 3 of a 6 ms step, and the faults serialise the threads). A kept storage is handed
// out again only when its last user has let it go (its use count is ours alone), so no live tensor
// is ever overwritten.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/Storage.h>
#include <c10/util/accumulate.h>
#include <c10/util/strides.h>

#include <cstdint>
#include <mutex>

namespace ee::torch_ops {

// empty(sizes, options): a contiguous tensor on the storage this slot keeps between calls, or on a
// new one (kept instead) when the kept one is still in use or too small; requests above max_bytes
// are plain allocations. One slot per call site (a static).
struct RecycledStorage {
    std::mutex mutex;
    c10::Storage kept;

    at::Tensor empty(c10::IntArrayRef sizes, const at::TensorOptions& options, int64_t max_bytes = int64_t{1} << 28) {
        at::Tensor fresh = at::empty({0}, options);
        const int64_t bytes = c10::multiply_integers(sizes) * static_cast<int64_t>(fresh.element_size());
        if (bytes == 0 || bytes > max_bytes || !options.device().is_cpu()) return at::empty(sizes, options);
        std::lock_guard<std::mutex> lock(mutex);
        if (!kept || kept.use_count() > 1 || static_cast<int64_t>(kept.nbytes()) < bytes) {
            kept = c10::Storage();  // let go of a smaller or still-used one first
            kept = at::empty({bytes / fresh.element_size()}, options).storage();
        }
        fresh.set_(kept, 0, sizes, c10::contiguous_strides(sizes));
        return fresh;
    }
};

}  // namespace ee::torch_ops
