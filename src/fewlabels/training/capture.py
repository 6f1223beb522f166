"""Graph-captured training steps with an eager fallback (issue 13, part 2; a first cut, untested on CUDA).

``capture_step(step, device)`` returns a callable that runs one training step and how many steps it
already took while warming up. On CUDA it records ``step`` once in a CUDA graph and replays it (one
launch per step instead of dozens of small kernels); anywhere else, or when capture fails, it logs
one line and hands back ``step`` itself, so the numbers are those of the eager path.

What ``step`` must be for capture to be correct (the GPU session has to check each on a GPU):
no host sync inside (no ``.item()``, ``float()``, ``bool(tensor)``, data-dependent Python control
flow); its inputs are tensors it owns and refills in place (no new tensors from Python per step);
its optimisers built with ``capturable=True``; its random numbers from the device's default CUDA
generator or from generators passed in ``generators`` (registered with the graph, torch >= 2.5's
``CUDAGraph.register_generator_state``); the tensors it returns are overwritten at each replay
(clone or accumulate them before the next call, as ``group.train_stacked`` does with ``sums``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Step = Callable[[], object]


def capture_step(step: Step, device: torch.device, *, generators: Sequence[torch.Generator] = (),
                 warmup: int = 3, log=print, taken_out: Callable[[object], None] | None = None) -> tuple[Step, int]:
    """``(run_one_step, steps_taken)``: a CUDA-graph replay of ``step`` when it can be captured, else
    ``step``. The warm-up steps (on a side stream, as CUDA graph capture needs) are real steps of
    training: the caller counts them (``steps_taken``) in its schedule, and ``taken_out`` receives
    each one's output (e.g. to add its losses to the epoch's). Recording runs no step."""
    if device.type != "cuda":
        log(f"capture: no CUDA graph on {device.type}; training steps run eagerly")
        return step, 0
    taken = 0
    try:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                result = step()
                taken += 1
                if taken_out is not None:
                    taken_out(result)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        if generators:
            register = getattr(graph, "register_generator_state", None)
            if register is None:
                raise RuntimeError(f"torch {torch.__version__} cannot register a non-default generator with a graph")
            for g in generators:
                register(g)
        with torch.cuda.graph(graph):
            out = step()
    except Exception as e:  # noqa: BLE001 - whatever stops capture, the eager step still works
        log(f"capture: CUDA graph capture failed ({type(e).__name__}: {e}); training steps run eagerly")
        return step, taken

    def replay():
        graph.replay()
        return out

    log(f"capture: training step captured in a CUDA graph after {taken} eager warm-up steps")
    return replay, taken
