"""``--avx2``: the benchmark as on an AVX2 machine, the engine's kernels and torch's alike. Set before
torch or the engine loads (each reads its cap once): the engine's kernels at x86-64-v3, ATen's
vectorised kernels at AVX2, MKL's and oneDNN's dispatch at AVX2, XLA (the JAX peer) at AVX2;
``torch.compile``'s code 256 bits wide is set by the benchmark itself (an inductor setting)."""

import os

__all__ = ["AVX2_ENVIRONMENT", "cap_to_avx2"]

AVX2_ENVIRONMENT = {
    "ENTROPYENG_MAX_ISA": "v3",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def cap_to_avx2():
    """Cap every library the benchmark times at AVX2 (this process and the ones it starts)."""
    os.environ.update(AVX2_ENVIRONMENT)
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_max_isa" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_max_isa=AVX2").strip()
