// The instruction-set level this CPU runs the kernels at, and the one way the kernels pick their
// loops by it. The ISA-specific loops are compiled once per level (x86-64 baseline, v3 = AVX2,
// v4 = AVX-512) into namespaces base, v3 and v4 (CMakeLists.txt, EE_HAVE_ISA_LEVELS).
#pragma once

namespace ee {

// The level the loops run at on this CPU ("baseline", "x86-64-v3", "x86-64-v4"): the best it has,
// capped by the environment variable ENTROPYENG_MAX_ISA ("base", "v3" or "v4"; read once, when the
// library loads) so that tests can run every level's loops on one machine.
const char* cpu_isa_name();
// 0 (baseline), 3 (x86-64-v3) or 4 (x86-64-v4).
int cpu_isa_level();

// The clock this core runs at now, in GHz, timed over a chain of n dependent integer additions (one
// a cycle; the loop's counter runs beside them): what the benchmark's FMA peak is reckoned from, as
// the nominal clock of /proc/cpuinfo leaves out the boost.
double core_clock_ghz(long n = 20000000);

}  // namespace ee

// Every area of ISA-specific loops (Langevin, the MLP rows, the batched MLP and network) is a table
// of function pointers TYPE built per level by FN() in that level's namespace:
//   EE_DECLARE_ISA_TABLE(TYPE, FN)   declares ee::base::FN(), ee::v3::FN(), ee::v4::FN();
//   EE_ISA_TABLE(FN)                 calls the one of this CPU's level (kept in a static by the caller).
// The per-level source files compile one body under -march of each level (CMakeLists.txt), its
// namespace named by EE_ISA.
#define EE_ISA_DECLARE_ONE_(NS, TYPE, FN) \
    namespace NS {                        \
    TYPE FN();                            \
    }

#if defined(EE_HAVE_ISA_LEVELS)
#define EE_DECLARE_ISA_TABLE(TYPE, FN) \
    EE_ISA_DECLARE_ONE_(base, TYPE, FN) EE_ISA_DECLARE_ONE_(v3, TYPE, FN) EE_ISA_DECLARE_ONE_(v4, TYPE, FN)
#define EE_ISA_TABLE(FN) \
    (::ee::cpu_isa_level() == 4 ? v4::FN() : ::ee::cpu_isa_level() == 3 ? v3::FN() : base::FN())
#else
#define EE_DECLARE_ISA_TABLE(TYPE, FN) EE_ISA_DECLARE_ONE_(base, TYPE, FN)
#define EE_ISA_TABLE(FN) (base::FN())
#endif
