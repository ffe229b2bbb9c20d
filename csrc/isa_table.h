// The table of kernels of the best instruction-set level this CPU has (cpu_isa_level, capped by
// ENTROPYENG_MAX_ISA): EE_ISA_TABLE(fn) calls v4::fn(), v3::fn() or base::fn(), each a function that
// returns one level's table (the levels exist only when the build has EE_HAVE_ISA_LEVELS).
#pragma once

#include "langevin.h"  // cpu_isa_level

#if defined(EE_HAVE_ISA_LEVELS)
#define EE_ISA_TABLE(FN) \
    (::ee::cpu_isa_level() == 4 ? v4::FN() : ::ee::cpu_isa_level() == 3 ? v3::FN() : base::FN())
#else
#define EE_ISA_TABLE(FN) (base::FN())
#endif
