"""``--avx2``: the benchmark as on an AVX2 machine, the engine's kernels and its peers' products alike.
Set before torch or the engine loads (each reads its cap once): the engine's kernels at x86-64-v3,
MKL's and oneDNN's dispatch (torch's matrix products) at AVX2, XLA (the JAX peer) at AVX2;
``torch.compile``'s code 256 bits wide is set by the benchmark itself (an inductor setting). ATen's
own elementwise kernels keep the CPU's best: torch 2.13's override, ``ATEN_CPU_CAPABILITY=avx2``,
made inductor emit 16-wide loops over 8-wide vectors on an AVX-512 machine, leaving half of some
outputs unwritten (NaN losses now and then)."""

import os

__all__ = ["AVX2_ENVIRONMENT", "cap_to_avx2"]

AVX2_ENVIRONMENT = {
    "ENTROPYENG_MAX_ISA": "v3",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def cap_to_avx2():
    """Cap every library the benchmark times at AVX2 (this process and the ones it starts)."""
    os.environ.update(AVX2_ENVIRONMENT)
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_max_isa" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_max_isa=AVX2").strip()
