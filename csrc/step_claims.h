// Steps of work shared by the threads that join a run, with no parallel region per step: each step is
// phases of numbered pieces (a step's walkers, then its hill bands), claimed one at a time (each
// piece's stamp counts the steps it was claimed for); a thread with nothing left to claim in a phase
// waits for the pieces other threads have claimed, or goes on where its next pieces wait themselves
// for what they need (wlmd_native.cpp: a walker's forward pass may start before the previous step's
// end); the step's serial tail is done by the thread that finishes its last piece. A thread only
// ever waits for work that a running thread has claimed, so the run completes with any number of
// threads joining it, one included (it then claims every piece), and each piece's arithmetic is the
// same on any thread.
//
// One parallel region for a whole run instead of one or two a step: a region's fork and join cost
// 4-5 us on a 2-core VM (at::parallel_for over OpenMP), which two threads pay every ~100 us step.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ee {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// The pieces of one phase of every step (a step's walkers, its bands), each claimed once a step. A
// thread claims its own share first, the pieces it had the step before (their data still in its
// core's cache: a walker's parameters and velocities, a band's rows of S), then takes what is left of
// the others' from their far end (two threads meet in the middle instead of contending piece by piece).
class PhaseClaims {
  public:
    explicit PhaseClaims(int64_t n) : n_(n), stamp_(new std::atomic<int64_t>[static_cast<size_t>(n)]) {
        for (int64_t i = 0; i < n; ++i) stamp_[i].store(0, std::memory_order_relaxed);
    }

    // Runs work(i) on every piece of step s this thread claims, its share [a, b) first; true when
    // this thread finished the step's last piece (it alone then has seen every piece's writes).
    template <class Work>
    bool run(int64_t s, int64_t a, int64_t b, Work work) {
        bool last = false;
        auto take = [&](int64_t i) {
            if (!claim(i, s)) return;
            work(i);
            last |= finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == (s + 1) * n_;
        };
        for (int64_t i = a; i < b; ++i) take(i);
        for (int64_t i = a - 1; i >= 0; --i) take(i);
        for (int64_t i = n_ - 1; i >= b; --i) take(i);
        return last;
    }
    // Every piece of steps 0..s finished (their writes visible to the caller).
    bool finished_through(int64_t s) const { return finished_.load(std::memory_order_acquire) >= (s + 1) * n_; }

  private:
    // piece i's stamp counts the steps it was claimed for: step s claims it while it reads s
    bool claim(int64_t i, int64_t s) {
        int64_t expected = s;
        return stamp_[i].load(std::memory_order_relaxed) == s &&
               stamp_[i].compare_exchange_strong(expected, s + 1, std::memory_order_relaxed);
    }

    int64_t n_;
    std::unique_ptr<std::atomic<int64_t>[]> stamp_;
    alignas(64) std::atomic<int64_t> finished_{0};
};

// A run's steps: its walkers' and its bands' claims, and the count of steps whose tail is done.
struct StepClaims {
    StepClaims(int64_t walkers, int64_t bands) : walkers(walkers), bands(bands) {}
    PhaseClaims walkers, bands;
    alignas(64) std::atomic<int64_t> steps_done{0};  // released by the tail's thread
    std::atomic<bool> failed{false};                  // a thread threw: the others stop waiting

    // Spins (then yields: more threads than cores) until ready() holds; false when a thread failed.
    template <class Ready>
    bool wait(Ready ready) const {
        for (int64_t i = 0; !ready(); ++i) {
            if (failed.load(std::memory_order_relaxed)) return false;
            if (i < 4096)
                cpu_relax();
            else
                std::this_thread::yield();
        }
        return true;
    }
};

}  // namespace ee
