// Known default and behaviour changes that explain a suspect in plain words. Data, each entry
// with its public source; matched by knob name or by fingerprint path.

export interface KnownChange {
  id: string
  /** runtime knob names (as in knobs_effective / env.NAME) this explains */
  knobs?: string[]
  /** fingerprint paths (prefix match) this explains */
  paths?: string[]
  text: string
  source: string
  /**
   * A more specific case of another entry (by id), used instead of it when the divergence
   * starts where this change acts and the versions cross the change (regexes on a → b).
   */
  refines?: {id: string; phase?: string; step?: number; from?: string; to?: string; module?: string}
  /** the workloads whose code can reach this change (unset: any); a user's script always can */
  workloads?: string[]
}

const RANDOMNESS = 'https://docs.pytorch.org/docs/stable/notes/randomness.html'
const CUDA_TF32 = 'https://docs.pytorch.org/docs/stable/notes/cuda.html#tensorfloat-32-tf32-on-ampere-and-later-devices'

export const KNOWN_CHANGES: KnownChange[] = [
  {
    id: 'threads-reduction-order',
    knobs: ['threads', 'interop_threads', 'env.OMP_NUM_THREADS', 'env.MKL_NUM_THREADS', 'env.OPENBLAS_NUM_THREADS'],
    paths: ['threads.intra_op', 'threads.inter_op'],
    text: 'The intra-op thread count decides how reductions (BatchNorm statistics, matmul accumulation, loss means) are split across threads; floating-point addition is not associative, so a different split changes the last bits. Thread defaults differ between builds and hosts (the same Debian torch 2.6 image starts with one thread per core on one 2-core VM and with 1 on another).',
    source: 'https://docs.pytorch.org/docs/stable/notes/cpu_threading_torchscript_inference.html',
  },
  {
    id: 'tf32-matmul-default',
    knobs: ['tf32_matmul', 'float32_matmul_precision', 'env.NVIDIA_TF32_OVERRIDE'],
    paths: ['flags.matmul_allow_tf32', 'flags.float32_matmul_precision'],
    text: 'torch.backends.cuda.matmul.allow_tf32 defaulted to True in PyTorch 1.7–1.11 and to False from 1.12: float32 matmuls on Ampere and later GPUs round inputs to TF32 (10-bit mantissa) when it is on. torch.set_float32_matmul_precision("high"/"medium") turns the same on.',
    source: CUDA_TF32,
  },
  {
    id: 'tf32-cudnn-default',
    knobs: ['tf32_cudnn'],
    paths: ['flags.cudnn_allow_tf32'],
    text: 'torch.backends.cudnn.allow_tf32 (TF32 in cuDNN convolutions) stayed True by default when the matmul default changed in 1.12.',
    source: CUDA_TF32,
  },
  {
    id: 'deterministic-algorithms',
    knobs: ['deterministic', 'env.CUBLAS_WORKSPACE_CONFIG'],
    paths: ['flags.deterministic_algorithms', 'flags.cudnn_deterministic', 'env.CUBLAS_WORKSPACE_CONFIG'],
    text: 'torch.use_deterministic_algorithms(True) selects deterministic kernels (and errors where none exists); on CUDA ≥ 10.2 deterministic cuBLAS also needs CUBLAS_WORKSPACE_CONFIG=:4096:8 or :16:8. Without them, ops using atomicAdd (embedding and index_add backward, scatter_add) vary run to run.',
    source: RANDOMNESS,
  },
  {
    id: 'cudnn-benchmark',
    knobs: ['cudnn_benchmark'],
    paths: ['flags.cudnn_benchmark'],
    text: 'cudnn.benchmark=True autotunes the convolution algorithm per input shape; the chosen algorithm, and so the result, can change from run to run and machine to machine.',
    source: RANDOMNESS,
  },
  {
    id: 'framework-release',
    paths: ['torch.version', 'torch.git_version'],
    text: 'PyTorch does not promise bitwise-identical results across releases, commits or platforms: kernels, their dispatch and fusion change between versions.',
    source: RANDOMNESS,
  },
  {
    // Verified in the installed files of Debian's python3-torch 1.13.1 and 2.6.0
    // (/usr/lib/python3/dist-packages/torch/optim/adam.py).
    id: 'adam-first-moment-lerp',
    paths: [],
    refines: {id: 'framework-release', phase: 'update', step: 1, from: '^1\\.', to: '^2\\.'},
    text: "Adam's first-moment update changed form between releases: torch 1.13 computes exp_avg.mul_(beta1).add_(grad, alpha=1-beta1), torch 2.x exp_avg.lerp_(grad, 1-beta1). The two agree while exp_avg is zero (the first update) and round differently from the second update on — a divergence that starts in the optimizer update at step 1.",
    source: 'https://github.com/pytorch/pytorch/blob/v2.6.0/torch/optim/adam.py',
  },
  {
    id: 'onednn-version',
    paths: ['torch.config.onednn', 'libraries.onednn'],
    text: 'oneDNN (formerly MKL-DNN) implements CPU matmul, linear and normalization primitives; a new version changes kernel selection, blocking and vectorization, so accumulation order (and the last bits) change.',
    source: 'https://github.com/uxlfoundation/oneDNN/releases',
  },
  {
    id: 'blas-library',
    paths: ['libraries.blas', 'libraries.lapack', 'libraries.mkl', 'torch.config.blas_info', 'torch.config.mkl'],
    text: 'The BLAS actually loaded (reference BLAS, OpenBLAS, MKL — often switched by Debian alternatives without changing torch) has its own kernels and blocking; MKL documents Conditional Numerical Reproducibility for exactly this reason.',
    source:
      'https://www.intel.com/content/www/us/en/docs/onemkl/developer-guide-linux/2024-0/obtaining-numerically-reproducible-results.html',
  },
  {
    id: 'cpu-capability',
    knobs: ['env.ATEN_CPU_CAPABILITY'],
    paths: ['torch.config.cpu_capability'],
    text: 'ATen dispatches CPU kernels by instruction set (default/AVX2/AVX-512); ATEN_CPU_CAPABILITY overrides it, and a different vector width changes reduction order.',
    source: 'https://docs.pytorch.org/docs/stable/backends.html#torch-backends-cpu',
  },
  {
    id: 'cuda-libraries',
    paths: [
      'cuda.cudnn',
      'cuda.runtime',
      'cuda.driver',
      'libraries.cudnn',
      'libraries.cublas',
      'libraries.cudart',
      'torch.config.cudnn',
      'torch.config.cuda_runtime',
    ],
    text: 'cuDNN and cuBLAS pick algorithms per GPU, version and workspace; cuBLAS documents that results are only reproducible for the same architecture, library version and workspace configuration.',
    source: 'https://docs.nvidia.com/cuda/cublas/index.html#results-reproducibility',
  },
  {
    id: 'onednn-max-cpu-isa',
    knobs: ['env.ONEDNN_MAX_CPU_ISA', 'env.DNNL_MAX_CPU_ISA'],
    paths: ['env.ONEDNN_MAX_CPU_ISA', 'env.DNNL_MAX_CPU_ISA'],
    text: 'ONEDNN_MAX_CPU_ISA (also read under its older name DNNL_MAX_CPU_ISA) caps the instruction set oneDNN may JIT kernels for, e.g. AVX2 on an AVX-512 CPU. Kernels for another ISA block and vectorize convolutions and matmuls differently, so the accumulation order — and the last bits — change; an image can set it in its ENV without anyone noticing.',
    source: 'https://oneapi-src.github.io/oneDNN/dev_guide_cpu_dispatcher_control.html',
  },
  {
    id: 'onednn-default-fpmath-mode',
    knobs: ['env.ONEDNN_DEFAULT_FPMATH_MODE', 'env.DNNL_DEFAULT_FPMATH_MODE'],
    paths: ['env.ONEDNN_DEFAULT_FPMATH_MODE', 'env.DNNL_DEFAULT_FPMATH_MODE'],
    text: 'ONEDNN_DEFAULT_FPMATH_MODE lets oneDNN down-convert f32 computations implicitly (BF16, F16, TF32 or ANY instead of the default STRICT): f32 convolutions and matmuls then round their inputs to a narrower type, which changes results well beyond the last bit.',
    source: 'https://oneapi-src.github.io/oneDNN/dev_guide_attributes_fpmath_mode.html',
  },
  {
    id: 'ld-preload-library-path',
    paths: ['env.LD_PRELOAD', 'env.LD_LIBRARY_PATH'],
    text: 'LD_PRELOAD loads the named libraries before any other and LD_LIBRARY_PATH puts its directories first in the search for shared libraries, so they decide which BLAS, OpenMP runtime, malloc or cuDNN a process actually uses without any package changing. The libraries actually loaded are in the fingerprint (libraries.*).',
    source: 'https://man7.org/linux/man-pages/man8/ld.so.8.html',
  },
]

/** Known facts about the layers of the canary workloads (conv, RNN, attention) and AMP. */
KNOWN_CHANGES.push(
  {
    id: 'conv-algorithm-onednn',
    paths: [],
    refines: {id: 'onednn-version', module: 'Conv'},
    text: 'oneDNN picks a convolution implementation (direct, GEMM-based, Winograd) and its blocking by shape, instruction set (AVX2, AVX-512, AMX) and version; each accumulates the products in a different order, so a new oneDNN, another CPU or an ISA cap (ONEDNN_MAX_CPU_ISA) changes convolution outputs and gradients in the last bits while a plain MLP stays identical.',
    source: 'https://uxlfoundation.github.io/oneDNN/dev_guide_convolution.html',
  },
  {
    id: 'conv-algorithm-cudnn',
    paths: [],
    refines: {id: 'cuda-libraries', module: 'Conv'},
    text: 'cuDNN offers several convolution algorithms per shape (implicit GEMM, FFT, Winograd) and picks one by heuristics, or by timing them when cudnn.benchmark is on; a new cuDNN, another GPU or benchmarking changes the choice and with it the rounding of convolution outputs and gradients.',
    source: 'https://docs.pytorch.org/docs/stable/notes/randomness.html#cuda-convolution-benchmarking',
  },
  {
    id: 'cudnn-rnn',
    paths: [],
    refines: {id: 'cuda-libraries', module: 'LSTM|GRU|RNN'},
    text: 'On CUDA, nn.LSTM runs through cuDNN’s RNN kernels; PyTorch documents known nondeterminism of RNN functions on some cuDNN and CUDA versions (deterministic only with CUBLAS_WORKSPACE_CONFIG=:16:8 or :4096:2 on CUDA ≥ 10.2), and the dropout between layers is drawn inside cuDNN.',
    source: 'https://docs.pytorch.org/docs/stable/generated/torch.nn.LSTM.html',
  },
  {
    id: 'sdpa-backends',
    workloads: ['attention'],
    paths: [
      'attention.sdpa_available',
      'attention.flash_sdp_enabled',
      'attention.mem_efficient_sdp_enabled',
      'attention.math_sdp_enabled',
      'attention.cudnn_sdp_enabled',
      'attention',
    ],
    text: 'F.scaled_dot_product_attention (torch ≥ 2.0) dispatches to a flash, memory-efficient, cuDNN or math backend by device, dtype, shapes and which backends are enabled; the backends tile the softmax differently, the set and the defaults change between releases (the cuDNN backend arrived in 2.5), and torch < 2.0 has no SDPA at all, so an explicit softmax(qkᵀ/√d)v runs instead: two targets on different paths run different code.',
    source: 'https://docs.pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html',
  },
  {
    id: 'compile-fusion',
    knobs: ['compile'],
    paths: ['knobs.compile'],
    text: 'torch.compile (TorchInductor) fuses neighbouring ops into generated kernels (C++/OpenMP on the CPU, Triton on the GPU): a fused LayerNorm+GELU or BatchNorm+ReLU accumulates in another order and may keep intermediates in registers at another precision than the eager kernels, so outputs and gradients differ in the last bits from the first step on, and the difference grows through training. With dropout in the model the compiled program also draws its own random numbers (generated Philox code, unless torch._inductor.config.fallback_random is set), so its masks differ from eager’s: measured on an H200, the MLP’s compiled output differs from eager by 72 % (relative L2) at step 0, a convolution net’s without dropout by 1e-7.',
    source: 'https://docs.pytorch.org/tutorials/intermediate/inductor_debug_cpu.html',
  },
  {
    id: 'ddp-reduction-order',
    knobs: ['world_size', 'bucket_cap_mb', 'ddp_backend'],
    paths: ['knobs.world_size', 'knobs.bucket_cap_mb', 'knobs.ddp_backend'],
    text: 'DistributedDataParallel averages the gradients of the ranks with an all-reduce over buckets of gradients; the world size (and the bucket size, and the backend’s reduction algorithm) decides the order of those floating-point sums, so gradients differ in the last bits from the first backward on (measured with gloo on torch 1.13: ≤ 3e-8 on an MLP), and each rank’s loss is the mean over its own slice of the batch. With no BatchNorm and no dropout in the model (the attention workload) that is the only difference: only reduction order.',
    source: 'https://docs.pytorch.org/docs/stable/notes/ddp.html',
  },
  {
    id: 'ddp-per-rank-batchnorm-dropout',
    knobs: ['world_size'],
    workloads: ['mlp'],
    text: 'DistributedDataParallel averages the gradients of the ranks with an all-reduce over buckets of gradients; the world size (and the bucket size, and the backend’s reduction algorithm) decides the order of those floating-point sums, so gradients differ in the last bits from the first backward on (measured with gloo on torch 1.13: ≤ 3e-8 on an MLP), and each rank’s loss is the mean over its own slice of the batch. The MLP changes more: per-rank BatchNorm — each rank normalizes with the mean and variance of its own slice (BatchNorm1d, not SyncBatchNorm, which DDP refuses on the CPU) — and per-rank dropout — each rank draws its own masks from its own generator — so the forward itself differs from the first step on.',
    source: 'https://docs.pytorch.org/docs/stable/generated/torch.nn.SyncBatchNorm.html',
  },
  {
    id: 'ddp-per-rank-batchnorm',
    knobs: ['world_size'],
    workloads: ['cnn'],
    text: 'DistributedDataParallel averages the gradients of the ranks with an all-reduce over buckets of gradients; the world size (and the bucket size, and the backend’s reduction algorithm) decides the order of those floating-point sums, so gradients differ in the last bits from the first backward on (measured with gloo on torch 1.13: ≤ 3e-8 on an MLP), and each rank’s loss is the mean over its own slice of the batch. The convolution net changes more: per-rank BatchNorm — each rank normalizes with the statistics of its own slice (BatchNorm2d, not SyncBatchNorm) — so its forward differs from the first step on.',
    source: 'https://docs.pytorch.org/docs/stable/generated/torch.nn.SyncBatchNorm.html',
  },
  {
    id: 'ddp-per-rank-dropout',
    knobs: ['world_size'],
    workloads: ['lstm'],
    text: 'DistributedDataParallel averages the gradients of the ranks with an all-reduce over buckets of gradients; the world size (and the bucket size, and the backend’s reduction algorithm) decides the order of those floating-point sums, so gradients differ in the last bits from the first backward on (measured with gloo on torch 1.13: ≤ 3e-8 on an MLP), and each rank’s loss is the mean over its own slice of the batch. The LSTM changes more: per-rank dropout — each rank draws its own dropout masks between the LSTM layers from its own generator — so its forward differs from the first step on.',
    source: RANDOMNESS,
  },
  {
    id: 'amp-autocast',
    knobs: ['amp'],
    paths: ['knobs.amp'],
    text: 'Under autocast, matmuls and convolutions run in float16 or bfloat16 (about 3 decimal digits for bfloat16), while softmax, reductions and losses stay in float32 — per an op list that changes between releases; a run with AMP on differs from fp32 from the first Linear layer on, and bfloat16 differs more than float16.',
    source: 'https://docs.pytorch.org/docs/stable/amp.html#autocast-op-reference',
  },
)

export function knownChange(id: string): KnownChange | null {
  return KNOWN_CHANGES.find((k) => k.id === id) ?? null
}

/** The entry explaining a knob; one written for this workload first (world_size acts differently per model). */
export function explainKnob(knob: string, workload?: string | null): KnownChange | null {
  const all = KNOWN_CHANGES.filter((k) => k.knobs?.includes(knob))
  return all.find((k) => workload && k.workloads?.includes(workload)) ?? all.find((k) => !k.workloads) ?? all[0] ?? null
}

export function explainPath(path: string): KnownChange | null {
  return KNOWN_CHANGES.find((k) => k.paths?.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}:`))) ?? null
}

/** The entry refining `general` that fits where the divergence starts and the version change, if any. */
export function refinedChange(
  general: KnownChange,
  at: {phase: string | null; step: string | number | null; a: unknown; b: unknown; module?: string | null},
): KnownChange | null {
  return (
    KNOWN_CHANGES.find((k) => {
      const r = k.refines
      if (!r || r.id !== general.id) return false
      if (r.phase !== undefined && r.phase !== at.phase) return false
      if (r.step !== undefined && String(r.step) !== String(at.step)) return false
      if (r.module !== undefined && !new RegExp(r.module).test(at.module ?? '')) return false
      if (r.from !== undefined && !new RegExp(r.from).test(String(at.a))) return false
      return r.to === undefined || new RegExp(r.to).test(String(at.b))
    }) ?? null
  )
}
