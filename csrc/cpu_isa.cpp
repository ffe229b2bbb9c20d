// CPU detection: the instruction-set level of this CPU, capped by ENTROPYENG_MAX_ISA.
#include "cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace ee {

namespace {

int detect_level() {
    int cap = 4;
    if (const char* env = std::getenv("ENTROPYENG_MAX_ISA")) {
        if (std::strcmp(env, "base") == 0) cap = 0;
        if (std::strcmp(env, "v3") == 0) cap = 3;
    }
#if defined(EE_HAVE_ISA_LEVELS)
    __builtin_cpu_init();
    if (cap == 4 && __builtin_cpu_supports("x86-64-v4")) return 4;
    if (cap != 0 && __builtin_cpu_supports("x86-64-v3")) return 3;
#endif
    (void)cap;
    return 0;
}

const int kLevel = detect_level();

}  // namespace

int cpu_isa_level() { return kLevel; }

const char* cpu_isa_name() { return kLevel == 4 ? "x86-64-v4" : kLevel == 3 ? "x86-64-v3" : "baseline"; }

}  // namespace ee
