// One instruction-set level of the batched MLP loops (mlp_batch_loops.inc); EE_ISA names the
// namespace (base, v3, v4) and the build adds the matching -march flag (and contraction) to this file.
#include "mlp_batch_loops.inc"

#ifndef EE_ISA
#define EE_ISA base
#endif

namespace ee {
namespace EE_ISA {

MlpBatchKernels mlp_batch_kernels() {
    return MlpBatchKernels{&batch::forward<float>, &batch::forward<double>, &batch::backward<float>,
                           &batch::backward<double>};
}

}  // namespace EE_ISA
}  // namespace ee
