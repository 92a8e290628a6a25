"""benchmarks/gpu_protocol.py: the GPU timing runs the profile it names, with the wheels requirements.lock pins."""

from __future__ import annotations

from builders import load_benchmark


def test_profiles_and_slices_are_the_params_that_run():
    gpu = load_benchmark("gpu_protocol")
    default = gpu.protocol_params("default", None, [])
    assert default["cv"]["repeats"] == 3 and default["cnn"]["architecture"] == "column"  # 5 folds x 3 repeats
    paper = gpu.protocol_params("paper", 2, ["cnn.epochs=3"])
    assert paper["render"]["size"] == "150x140" and paper["cnn"]["architecture"] == "paper"
    assert paper["tune"]["trials"] == 2 and paper["cnn"]["epochs"] == 3  # the measured slice
    assert gpu.protocol_params("paper", None, [])["tune"]["trials"] == 120  # what the slice is extrapolated to
    assert gpu.protocol_params("paper", None, [], repeats=1)["cv"]["repeats"] == 1  # --repeats wins over the profile
    pins = gpu.locked_versions(gpu.WHEEL_PACKAGES)
    assert set(pins) == set(gpu.WHEEL_PACKAGES) and all(v[0].isdigit() for v in pins.values())
