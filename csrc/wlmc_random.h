// The random words of one WLMC step, shared by the CPU chain (wlmc.cpp) and the CUDA walkers.
#pragma once

#include <cstdint>

#include "common.h"
#include "philox.h"

namespace ee {

struct WlmcRandoms {
    uint64_t param_word;
    double move;    // in [-1, 1)
    double accept;  // in (0, 1)
};

// Philox-4x32-10 with key = seed, counter = (t low, t high, walker, 0x574C4D43): word 0 picks the
// parameter ((word * P) >> 32), word 1 the move, word 2 the acceptance.
EE_HD WlmcRandoms wlmc_randoms(uint64_t seed, uint64_t walker, uint64_t t) {
    const Philox4x32 r = philox4x32_10(static_cast<uint32_t>(t), static_cast<uint32_t>(t >> 32),
                                       static_cast<uint32_t>(walker), 0x574C4D43u, static_cast<uint32_t>(seed),
                                       static_cast<uint32_t>(seed >> 32));
    WlmcRandoms out;
    out.param_word = r.v[0];
    out.move = static_cast<double>(r.v[1]) * (2.0 / 4294967296.0) - 1.0;
    out.accept = (static_cast<double>(r.v[2]) + 0.5) * (1.0 / 4294967296.0);
    return out;
}

}  // namespace ee
