"""An exported model in onnxruntime: features(image) and vjp(image, grads), on CPU or CUDA. No torch here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from .errors import DeviceError, ModelError
from .manifest import Manifest, read_manifest

Device = Literal["auto", "cpu", "cuda"]  # StylizeOptions.device and load_model's device
DEVICES: tuple[str, ...] = get_args(Device)
# Where onnxruntime's CPU tensors come from: "shared", one arena for every session of the process (registered once on
# onnxruntime's environment); "session", each session's own arena; "off", malloc and free per tensor.
Arena = Literal["shared", "session", "off"]
ARENAS: tuple[str, ...] = get_args(Arena)
_ORT_MISSING = (
    "onnxruntime is not installed: pip install 'nst[cpu]' (or 'nst[gpu]' for CUDA; never both, they "
    "share one import directory)"
)


def import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(_ORT_MISSING) from None
    return onnxruntime


def _providers(ort: Any, device: str) -> list[Any]:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise DeviceError(
            "CUDA was asked for but onnxruntime offers only "
            f"{', '.join(available)}; install 'nst[gpu]' (onnxruntime-gpu) or use --device cpu"
        )
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Model:
    """Two onnxruntime sessions over one exported model.

    features(image) runs the features graph and keeps the forward state (on the device) for vjp(); vjp(image, grads)
    returns dL/dimage = sum_l J_l^T g_l, reusing that saved state when `image` is the one last passed to features().
    `image` is float32 (1, 3, H, W), RGB in [0, 1]."""

    path: Path
    manifest: Manifest
    provider: str
    _features: Any = field(repr=False)
    _gradient: Any = field(repr=False)
    _device: str = field(repr=False, default="cpu")
    _saved: dict[str, Any] = field(repr=False, default_factory=dict)
    _saved_image: np.ndarray | None = field(repr=False, default=None)
    _run_options: Any = field(repr=False, default=None)  # onnxruntime RunOptions that shrink the arena (or None)
    _last_shape: tuple[int, ...] | None = field(repr=False, default=None)

    @property
    def layers(self) -> list[str]:
        """The layers whose activations features() returns (the model's taps), in network order."""
        return list(self.manifest.taps)

    @property
    def id(self) -> str:
        return self.manifest.id

    def _check_image(self, image: np.ndarray) -> np.ndarray:
        image = np.ascontiguousarray(image, dtype=np.float32)
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"image must be float32 (1, 3, H, W), got shape {image.shape}")
        m = self.manifest.min_size
        if min(image.shape[2:]) < m:
            raise ValueError(f"image is {image.shape[2]}x{image.shape[3]} px; this model needs at least {m}x{m}")
        return image

    def features(self, image: np.ndarray, keep_state: bool = True) -> dict[str, np.ndarray]:
        """Activations at every tap, as host arrays. keep_state=False (e.g. for style images) skips the saved state."""
        image = self._check_image(image)
        taps = list(self.manifest.taps)
        names = taps + (list(self.manifest.saved) if keep_state else [])
        if keep_state:  # drop the last state before allocating the next: -240 MB peak at 512 px (bench/README.md)
            self._saved, self._saved_image = {}, None
        if self._run_options is not None and self._last_shape not in (None, image.shape):
            self._release()
        self._last_shape = image.shape
        binding = self._features.io_binding()
        binding.bind_cpu_input("image", image)
        for name in names:
            binding.bind_output(name, self._device)  # on CUDA the state stays in GPU memory
        self._features.run_with_iobinding(binding)
        values = dict(zip(names, binding.get_outputs()))
        if keep_state:
            self._saved, self._saved_image = values, image.copy()
        return {t: values[t].numpy() for t in taps}

    def _release(self) -> None:
        """Hand the arena's unused regions back before the buffers of a new image size are allocated, so that a
        stage's peak does not hold the last stage's free regions as well (0.2 GB at 1024 px, bench/README.md).
        onnxruntime shrinks an arena only at the end of a run, so this is a run at the smallest size the model
        takes, asking for one tiny output: everything it allocates is free again except that output."""
        m = self.manifest.min_size
        tiny = np.zeros((1, 3, m, m), np.float32)
        self._features.run([self.manifest.taps[-1]], {"image": tiny}, self._run_options)

    def vjp(self, image: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """dL/dimage for upstream gradients dL/dF_l at the taps (missing taps count as zero)."""
        image = self._check_image(image)
        if self._saved_image is None or not np.array_equal(image, self._saved_image):
            self.features(image)
        binding = self._gradient.io_binding()
        for tap, input_name in self.manifest.grad_inputs.items():
            g = grads.get(tap)
            if g is None:
                g = np.zeros(self._saved[tap].shape(), np.float32)
            binding.bind_cpu_input(input_name, np.ascontiguousarray(g, dtype=np.float32))
        for name in self.manifest.saved:
            binding.bind_ortvalue_input(name, self._saved[name])
        binding.bind_output("grad_image", "cpu")
        self._gradient.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()


_shared_arena = False  # registered on onnxruntime's environment (once per process: it cannot be replaced)


def _register_shared_arena(ort: Any) -> None:
    global _shared_arena
    if _shared_arena:
        return
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    # kSameAsRequested (1): grow by each missing buffer's size, not the next power of two, so the arena holds
    # what the graphs use and no more
    ort.create_and_register_allocator(info, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
    _shared_arena = True


def session_options(ort: Any, on_cpu: bool, threads: int | None = None, arena: str = "shared") -> Any:
    """The onnxruntime SessionOptions load_model gives both sessions (ort: the module from import_ort). Public so that
    a profiler or an experiment can start from the engine's own settings and change one. arena: one of ARENAS."""
    if arena not in ARENAS:
        raise ValueError(f"unknown arena {arena!r}; choose one of: {', '.join(ARENAS)}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # NCHWc conv kernels on CPU
    # One arena shared by both sessions by default (bench/README.md, 512 px evaluation loop): without an arena every
    # tensor is freshly mapped memory, ~180k page faults per evaluation at 512², 20-25% slower; one arena per session
    # holds both sessions' largest buffers at once.
    opts.enable_cpu_mem_arena = arena != "off"
    if on_cpu and arena == "shared":
        _register_shared_arena(ort)
        opts.add_session_config_entry("session.use_env_allocators", "1")
    if on_cpu and arena != "off":
        # onnxruntime's memory pattern (one block per run, laid out after the first run at a size) sits in the arena
        # beside the outputs that outlive the run (the saved state): +350 MB at 512² over the arena without it, whose
        # best-fit reuse of freed tensors is then below even the no-arena peak.
        opts.enable_mem_pattern = False
    # FATAL only: a failed load is raised (and reported in one line by load_model); onnxruntime would also print it.
    opts.log_severity_level = 4
    if on_cpu:
        opts.intra_op_num_threads = threads or cpu_count()
        # Spinning ORT threads between runs starve the NumPy loss work on few cores (measured 45 -> 74 ms).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def load_model(
    path: str | Path, device: str = "auto", threads: int | None = None, tf32: bool = False, arena: str = "shared"
) -> Model:
    """Open an exported model directory. device: 'auto' (CUDA if onnxruntime offers it, else CPU), 'cpu' or 'cuda'.
    threads: onnxruntime's intra-op threads on CPU (default: every core this process may use).
    tf32: let CUDA convolutions use TF32 tensor cores (faster on Ampere and later, ~1e-3 relative error instead of
    float32's ~1e-6; off by default so CPU and CUDA runs agree).
    arena: where onnxruntime's CPU tensors live (ARENAS): "shared" (default), one arena for both sessions and every
    model of the process, grown by what is asked and shrunk when the image size changes; "off", malloc and free per
    tensor (slower: every tensor is freshly mapped memory); "session", each session's own arena (both sessions'
    largest buffers held at once)."""
    ort = import_ort()
    providers = _providers(ort, device)
    if providers[0] == "CUDAExecutionProvider":
        providers[0] = ("CUDAExecutionProvider", {"use_tf32": "1" if tf32 else "0"})
    path = Path(path)
    manifest = read_manifest(path)
    opts = session_options(ort, providers[0] == "CPUExecutionProvider", threads, arena)
    sessions = []
    for graph in (manifest.features, manifest.gradient):
        file = path / graph.file
        try:
            sessions.append(ort.InferenceSession(str(file), opts, providers=providers))
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            detail = " ".join(str(e).split())
            raise ModelError(
                f"onnxruntime cannot load {file} or its {manifest.weights.file} ({detail[:400]}); re-export the model"
            ) from None
    used = sessions[0].get_providers()[0]
    if device == "cuda" and used != "CUDAExecutionProvider":
        raise DeviceError(f"CUDA was asked for but onnxruntime fell back to {used} (CUDA/cuDNN libraries missing?)")
    on_cpu = used == "CPUExecutionProvider"
    run_options = None
    if on_cpu and arena != "off":
        run_options = ort.RunOptions()
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return Model(path, manifest, used, sessions[0], sessions[1], "cpu" if on_cpu else "cuda", _run_options=run_options)
