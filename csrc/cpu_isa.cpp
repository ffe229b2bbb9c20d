// CPU detection: the instruction-set level of this CPU, capped by ENTROPYENG_MAX_ISA.
#include "cpu_isa.h"

#include <chrono>
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

double core_clock_ghz(long n) {
    unsigned long x = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
        x += 1;
        __asm__ volatile("" : "+r"(x));  // one add a cycle, kept: the compiler may not sum the loop
    }
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    return x > 0 && dt.count() > 0 ? static_cast<double>(x) / dt.count() / 1e9 : 0.0;
}

const char* cpu_isa_name() { return kLevel == 4 ? "x86-64-v4" : kLevel == 3 ? "x86-64-v3" : "baseline"; }

}  // namespace ee
