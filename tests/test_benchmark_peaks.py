"""The processor peaks `benchmarks/cpu_inference.py` divides by (issue #24, item 1): read from
/proc/cpuinfo, so a fraction of peak means the same on an Intel Xeon with AMX and an AMD EPYC
without it (the project's machines have been both)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import cpu_inference  # noqa: E402

CPUINFO = """processor\t: {n}
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: 17
model name\t: test
cpu MHz\t\t: 2596.138
flags\t\t: fpu sse sse2 {flags}

"""


def _write(tmp_path, vendor, family, flags, processors=2):
    text = "".join(
        CPUINFO.format(n=n, vendor=vendor, family=family, flags=flags) for n in range(processors)
    )
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "vendor, family, flags, expected",
    [
        # AMD EPYC Genoa (Zen 4): AVX-512 on 256-bit units, BF16 and VNNI, no AMX
        ("AuthenticAMD", 25, "avx2 avx512f avx512_bf16 avx512_vnni", (32, 64, 128)),
        # AMD EPYC Turin (Zen 5): full-width AVX-512
        ("AuthenticAMD", 26, "avx2 avx512f avx512_bf16 avx512_vnni", (64, 128, 256)),
        # Intel Sapphire Rapids: AMX tiles for bfloat16 and int8
        (
            "GenuineIntel",
            6,
            "avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_int8 amx_tile",
            (64, 1024, 2048),
        ),
        # Intel Cascade Lake: VNNI, no bfloat16 instructions
        ("GenuineIntel", 6, "avx2 avx512f avx512_vnni", (64, 64, 256)),
        # AMD Zen 3: AVX2 only
        ("AuthenticAMD", 25, "avx2 fma", (32, 32, 32)),
    ],
)
def test_peaks_follow_the_processor(tmp_path, vendor, family, flags, expected):
    described = cpu_inference.cpu_description(_write(tmp_path, vendor, family, flags))
    assert described == (vendor, family, set(f"fpu sse sse2 {flags}".split()))
    peaks = cpu_inference.peak_flop_per_cycle(*described)
    assert (peaks["fp32"], peaks["bf16"], peaks["int8"]) == expected


def test_missing_cpuinfo_gives_the_plain_peak(tmp_path):
    described = cpu_inference.cpu_description(str(tmp_path / "absent"))
    assert described == ("", 0, set())
    assert cpu_inference.peak_flop_per_cycle(*described) == {"fp32": 16, "bf16": 16, "int8": 16}
