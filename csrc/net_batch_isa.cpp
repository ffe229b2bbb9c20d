// One instruction-set level of the batched network loops (net_batch_loops.inc); EE_ISA names the
// namespace (base, v3, v4) and the build adds the matching -march flag (and contraction) to this file.
#include "net_batch_loops.inc"

#ifndef EE_ISA
#define EE_ISA base
#endif

namespace ee {
namespace EE_ISA {

NetBatchKernels net_batch_kernels() {
    return NetBatchKernels{&netb::forward<float>,        &netb::forward<double>,        &netb::backward<float>,
                           &netb::backward<double>,       &netb::cache_len<float>,       &netb::cache_len<double>,
                           &netb::forward_cached<float>,  &netb::forward_cached<double>, &netb::backward_cached<float>,
                           &netb::backward_cached<double>};
}

}  // namespace EE_ISA
}  // namespace ee
