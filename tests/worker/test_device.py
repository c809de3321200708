"""Where the worker's torch work runs: device and dtype choice, and torch's CPU threads shared
between concurrent jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from horde_worker.device import Placement, resolve_placement, share_cpu_threads


@pytest.fixture
def four_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.usefixtures("four_torch_threads")
@pytest.mark.parametrize(("slots", "each"), [(2, 2), (3, 1), (8, 1)])
def test_concurrent_jobs_on_the_cpu_share_torch_threads(slots: int, each: int) -> None:
    assert share_cpu_threads(Placement("cpu", "float32"), slots) == each
    assert torch.get_num_threads() == each


@pytest.mark.usefixtures("four_torch_threads")
@pytest.mark.parametrize(
    ("placement", "slots"),
    [(Placement("cpu", "float32"), 1), (Placement("cuda", "float16"), 2)],
)
def test_one_job_at_a_time_or_a_gpu_keeps_every_torch_thread(
    placement: Placement, slots: int
) -> None:
    assert share_cpu_threads(placement, slots) is None
    assert torch.get_num_threads() == 4


def test_the_cpu_defaults_to_fp32_and_refuses_fp16() -> None:
    assert resolve_placement("cpu", "auto") == Placement("cpu", "float32")
    with pytest.raises(RuntimeError, match="fp16 is not usable on the CPU"):
        resolve_placement("cpu", "fp16")
