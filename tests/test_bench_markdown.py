"""``entropyeng bench --markdown DIR`` writes each section's table for the docs: headed by the machine
and the date, with the numbers the run measured (synthetic results here: no timing in a test)."""

import datetime

from entropyeng.benchmarks.markdown import write

RESULT = {
    "kernels": dict(rows=[dict(kernel="deposit, 1 hill", cpp_us=9.1, torch_us=236.0, speedup=25.9, note="")],
                    langevin_gbps=7.3, stream_gbps=30.0, dram_gbps=21.0, langevin_over_dram=2.9,
                    langevin_over_stream=4.0, langevin64_ms=4.85),
    "wlmc": {"ReLU": dict(cpp_us=0.98, full_recompute_us=3.45, torch_us=290.0, numba_us=float("nan")),
             "Tanh": dict(cpp_us=2.1, full_recompute_us=6.0, torch_us=300.0, numba_us=20.0),
             "table": {"4x8": [1.1, 8.2, 116.0]}, "paper_protocol_core_hours": 52.0},
    "wlmd": {"isa": "x86-64-v4", "spiral": {"paper-style torch script, float64": 1074.0, "eager step, float64": 331.0},
             "targets": {"eager float64 >= 3x the paper-style script": True}, "cnn": {"eager step, float32": 3037.0},
             "tasks": {"8 x 8 digits CNN, 2 channels (502 parameters)": {"native": 290.0, "compiled": 640.0}}},
    "walkers": {"K=1 compiled, batched MLP, 1 thread(s), best of 3": 8952.0,
                "K=64 compiled, batched MLP, 1 thread(s), best of 3": 12671.0, "P=1": 5257.0, "P=2": 8441.0},
    "tasks": [{"task": "house"}],  # no table of its own: not written
}


def test_each_section_is_a_markdown_file_headed_by_the_machine_and_date(tmp_path):
    paths = write(RESULT, str(tmp_path), "x86-64-v4", "entropyeng bench --markdown docs/perf")
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["kernels.md", "walkers.md", "wlmc.md", "wlmd.md"]
    for p in paths:
        head = open(p).read().splitlines()[0]
        assert datetime.date.today().isoformat() in head and "kernels at x86-64-v4" in head and "torch" in head
        assert "`entropyeng bench --markdown docs/perf`" in head
    kernels = (tmp_path / "kernels.md").read_text()
    assert "| deposit, 1 hill | 9.1 | 236 | 26× |" in kernels and "2.90× the time of a DRAM-bound copy" in kernels
    wlmc = (tmp_path / "wlmc.md").read_text()
    assert "| engine (cpp, incremental forward) | 0.98 | 2.1 |  |" in wlmc and "| numba peer (full forward) | n/a | 20 |" in wlmc
    assert "| 4x8 | 1.1 | 8.2 | 116 |" in wlmc and "52 core-hours" in wlmc
    wlmd = (tmp_path / "wlmd.md").read_text()
    assert "| eager step, float64 | 331 | 3.24× |" in wlmd and "script: met" in wlmd
    assert "8 x 8 digits CNN, 2 channels (502 parameters), its task's data and dtype: native step 290 µs" in wlmd
    assert "640 µs (2.21×)" in wlmd
    walkers = (tmp_path / "walkers.md").read_text()
    assert "K = 64 / K = 1: 1.42×" in walkers and "2 processes / 1: 1.61×" in walkers


def test_avx2_caps_torch_and_jax_as_well_as_the_engine():
    """--avx2 measures the path an AVX2 machine has on both sides of each ratio: the engine's kernels
    at x86-64-v3, and torch's matrix products (MKL, oneDNN) and XLA's at AVX2, set before torch loads;
    ATen's elementwise kernels are left alone (their override miscompiled inductor's loops)."""
    import subprocess
    import sys

    code = ("import sys; sys.argv.append('--avx2'); import entropyeng.benchmarks.__main__; import os, torch; "
            "print(os.environ['ENTROPYENG_MAX_ISA'], os.environ['MKL_ENABLE_INSTRUCTIONS'], "
            "os.environ['ONEDNN_MAX_CPU_ISA'], os.environ['XLA_FLAGS'], 'ATEN_CPU_CAPABILITY' in os.environ)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["v3", "AVX2", "AVX2", "--xla_cpu_max_isa=AVX2", "False"]


def test_the_reference_row_of_the_wlmd_table_runs_in_its_fresh_interpreter():
    """The WLMD section's 'engine on its torch reference kernels' row imports the benchmark's cases in
    a fresh interpreter (it broke when the in-package table was renamed entropyeng.benchmarks)."""
    from entropyeng.benchmarks import wlmd_cases

    assert wlmd_cases.reference_eager_us(2, rounds=1) > 0


def test_the_fma_peak_is_reckoned_from_the_timed_clock():
    """The MLP kernel's share of the peak: 2 FMA pipes x lanes x 2 flops x the clock the compiled
    module times (a boosted core runs well above /proc/cpuinfo's nominal clock)."""
    import torch

    from entropyeng import _core
    from entropyeng.benchmarks import wlmd_cases

    assert 0.2 < _core.core_clock_ghz() < 10
    assert _core.core_clock_ghz(0) == 0.0  # nothing timed: unknown
    assert wlmd_cases.fma_peak_gflops("x86-64-v3 (AVX2)", torch.float32, ghz=3.0) == 2 * 8 * 2 * 3.0
    v4_lanes = 4 if wlmd_cases._amd_zen4() else 8  # (Zen 4: AVX-512 on 256-bit datapaths)
    assert wlmd_cases.fma_peak_gflops("x86-64-v4", torch.float64, ghz=2.0) == 2 * v4_lanes * 2 * 2.0
    assert wlmd_cases.fma_peak_gflops("x86-64-v3", torch.float32, ghz=0.0) is None
