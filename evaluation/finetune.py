"""Fine-tuning of a fresh head on each episode's support set, for all episodes at once (the published protocol).

The protocol (docs/protocol.md, 1.3 Test): a new head of the pretraining kind, β = 5, m = 0, initialised fresh
(kaiming-uniform), trained with SGD (lr 0.01, momentum 0.9, dampening 0.9, weight decay 1e-3) for 100 passes over the
shuffled support set in minibatches of 4; cross-entropy. Accuracy = argmax on the 80 queries.

The head of one episode, as the published code builds it (lib/model.py `get_linear_clf` with `metric_params_test`):
- similarity "cosine" (losses cosine, neg-cosine): logits = β · (cos(z, W) − m · onehot(y)), no bias;
- similarity "dot", bias=False (loss neg-softmax): logits = β · (z·Wᵀ − m · onehot(y)), no bias;
- similarity "dot", bias=True, scale=1 (loss softmax, the Baseline): nn.Linear, logits = z·Wᵀ + b.
`finetune_head(loss)` gives these settings. W [way, D] and b [way] are drawn as nn.Linear draws them:
uniform(−1/√D, 1/√D). The margin is applied to the support logits only; queries are scored without it.

Batched algorithm (exact, no approximation). The features are fixed, so every gradient of row k of W is a
combination of the support features (cosine: of the L2-normalised support features) and of row k itself; weight decay
and momentum are linear. Row k of W therefore stays in the span of the basis B = [W₀ (way rows); Z (n support rows)]
for the whole run, and we keep W = C·B with coefficients C [E, way, way + n] instead of W [E, way, D]. Every
quantity the step needs is an inner product, read from the Gram matrix B·Bᵀ (computed once). A step then costs
O(way · (way + n)²) per episode instead of O(way · D): the same SGD iterates as the loop, in another basis.
The steps are torch.optim.SGD's exactly: d = g + wd·p; first step buf = d, later buf = momentum·buf + (1 − dampening)·d;
p = p − lr·buf; for the bias too. Cosine gradient: dL/dW_k = (g_k − Ŵ_k (Ŵ_k·g_k)) / ‖W_k‖ with g_k = dL/dŴ_k
(F.normalize's gradient wherever ‖W_k‖ > 1e-12, its eps). Computed in float64 (the tensors are tiny); the Gram matrix
in float64 too, so the iterates equal the float64 loop's to float64 rounding and the float32 loop's to float32
rounding (tests/evaluation/test_finetune.py runs both loops).

Randomness (documented order, so that a per-episode loop reproduces it): one int64 seed per episode is drawn from
`generator` for all E episodes at once (`episode_seeds`); episode e then draws from
torch.Generator().manual_seed(seed_e) on the CPU, in this order: W₀ [way, D] (uniform_), b₀ [way] (uniform_, only
when bias), permutations [epochs, n_support] = argsort(rand(epochs, n_support)) (`draw_episode_randomness`). Results
therefore do not depend on the chunk size, nor on the device beyond float rounding.

On a GPU the work of a step is tiny (600 episodes of [5, 30] coefficients) and its ~25 kernel launches are the cost:
the steps of one epoch are captured once as a CUDA graph and replayed for the other epochs (`_run_steps`), the same
kernels on the same buffers. On the CPU the same epoch function runs eagerly.
"""

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evaluation.errors import EvaluationError
from models.catalog import LOSS_NAMES, LOSSES

DEFAULT_CHUNK_SIZE = {"cpu": 128, "cuda": 4096}  # episodes per chunk: CPU caches favour small, GPUs large ones
_WORK_DTYPE = torch.float64  # the per-step tensors are tiny ([E, way, way + n]); float64 costs nothing here
_SEED_HIGH = 2**63 - 1


@dataclass(frozen=True, kw_only=True)
class FinetuneSettings:
    """Head and SGD settings of the per-episode fine-tuning (defaults: docs/protocol.md, 1.3)."""

    similarity: str = "cosine"
    scale: float = 5.0
    margin: float = 0.0
    bias: bool = False
    epochs: int = 100
    batch_size: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    dampening: float = 0.9
    weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        if self.similarity not in ("cosine", "dot"):
            raise EvaluationError(f"similarity must be 'cosine' or 'dot', got {self.similarity!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise EvaluationError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.lr <= 0 or self.momentum < 0 or self.weight_decay < 0:
            raise EvaluationError(
                f"need lr > 0, momentum >= 0, weight_decay >= 0; got {self.lr}, {self.momentum}, {self.weight_decay}"
            )


def finetune_head(loss: str) -> dict:
    """Head settings {similarity, scale, bias} of the fine-tuning head for pretraining `loss` (published code)."""
    if loss not in LOSSES:
        raise EvaluationError(f"unknown loss {loss!r}; known losses: {', '.join(LOSS_NAMES)}")
    return LOSSES[loss].finetune_head()


def episode_seeds(n_episodes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One int64 seed per episode, LongTensor [E] on the CPU, drawn from `generator` (global RNG if None)."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, _SEED_HIGH, (n_episodes,), generator=generator, device=device).cpu()


def draw_episode_randomness(
    seed: int, n_way: int, dim: int, n_support: int, epochs: int, bias: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Initial W₀ [way, D], b₀ [way] | None and permutations [epochs, n_support] of one episode (see module doc)."""
    g = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(dim)
    weight = torch.empty(n_way, dim).uniform_(-bound, bound, generator=g)
    bias0 = torch.empty(n_way).uniform_(-bound, bound, generator=g) if bias else None
    perms = torch.argsort(torch.rand(epochs, n_support, generator=g), dim=-1)
    return weight, bias0, perms


def _draw_chunk_randomness(
    seeds: torch.Tensor, n_way: int, dim: int, n_support: int, settings: FinetuneSettings
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Stacked draws of `draw_episode_randomness`: W₀ [E, way, D], b₀ [E, way] | None, perms [E, epochs, n]."""
    draws = [draw_episode_randomness(s, n_way, dim, n_support, settings.epochs, settings.bias) for s in seeds.tolist()]
    weights = torch.stack([d[0] for d in draws])
    biases = torch.stack([d[1] for d in draws if d[1] is not None]) if settings.bias else None
    perms = torch.stack([d[2] for d in draws])
    return weights, biases, perms


def default_chunk_size(device: torch.device | str) -> int:
    """Episodes fine-tuned together on `device` (memory per episode ≈ (way·(shot + query) + way) · D · 12 bytes)."""
    return DEFAULT_CHUNK_SIZE.get(torch.device(device).type, DEFAULT_CHUNK_SIZE["cpu"])


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    """On the CPU, run the steps on one intra-op thread: their tensors are tiny, and a parallel region per op costs
    more than it saves (4-10x slower on a loaded 2-core machine). Restores torch's thread count."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if device.type == "cpu":
            torch.set_num_threads(threads)


class _SGDBuffer:
    """torch.optim.SGD's momentum/dampening/weight-decay step for one tensor, in place (no nesterov)."""

    def __init__(self, settings: FinetuneSettings) -> None:
        self.settings = settings
        self.buf: torch.Tensor | None = None

    def step(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        """param ← param − lr · buf, with buf the momentum of grad + wd · param; `grad` is overwritten."""
        s = self.settings
        if s.weight_decay:
            grad.add_(param, alpha=s.weight_decay)
        if s.momentum:
            if self.buf is None:
                self.buf = grad.clone()
            else:
                self.buf.mul_(s.momentum).add_(grad, alpha=1.0 - s.dampening)
            grad = self.buf
        param.add_(grad, alpha=-s.lr)


@torch.no_grad()
def _finetune_chunk(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    seeds: torch.Tensor,
    settings: FinetuneSettings,
    n_way: int,
    device: torch.device | str | None = None,
    cuda_graph: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Fine-tune E episodes at once -> final W [E, way, D], b [E, way] | None (float64) and query accuracy [E]."""
    device = torch.device(device) if device is not None else support.device
    n_episodes, n_support, dim = support.shape
    cosine = settings.similarity == "cosine"
    w0, b0, perms = _draw_chunk_randomness(seeds, n_way, dim, n_support, settings)
    perms = perms.to(device)

    feats = support.to(device, _WORK_DTYPE)
    if cosine:
        feats = F.normalize(feats, dim=-1)
    basis = torch.cat([w0.to(device, _WORK_DTYPE), feats], dim=1)  # [E, m], m = way + n
    gram = basis @ basis.transpose(1, 2)  # [E, m, m]
    coef = torch.eye(n_way, n_way + n_support, device=device, dtype=_WORK_DTYPE).repeat(n_episodes, 1, 1)
    bias = b0.to(device, _WORK_DTYPE) if b0 is not None else None
    onehot = F.one_hot(support_labels.to(device), n_way).transpose(1, 2).to(_WORK_DTYPE)  # [E, way, n]
    onehot = F.pad(onehot, (n_way, 0))  # [E, way, m]: indexed by basis column like the products

    with _one_cpu_thread(device):
        _run_steps(coef, bias, gram, onehot, perms, settings, cuda_graph)

    weights = coef @ basis  # [E, way, D]
    correct = _predict(query.to(device), weights, bias, settings) == query_labels.to(device)
    return weights, bias, correct.to(_WORK_DTYPE).mean(dim=-1)


def _run_steps(
    coef: torch.Tensor,
    bias: torch.Tensor | None,
    gram: torch.Tensor,
    onehot: torch.Tensor,
    perms: torch.Tensor,
    settings: FinetuneSettings,
    cuda_graph: bool = True,
) -> None:
    """All SGD steps, in place on coef [E, way, m] and bias [E, way] | None (Gram [E, m, m], onehot [E, way, m]).

    Epoch by epoch: the epoch's permutation is copied into a fixed buffer, then its minibatch steps run. On CUDA (when
    `cuda_graph`) the first epoch runs eagerly (it also creates the momentum buffers, whose first step differs) and
    the steps of one epoch are captured once as a CUDA graph, replayed for every later epoch: one launch per epoch
    instead of ~25 per minibatch step, the same kernels on the same buffers, so the same iterates.
    """
    epoch = _EpochSteps(coef, bias, gram, onehot, settings)
    columns = perms + coef.shape[1]  # [E, epochs, n]: column of each support sample in the basis
    replay = None
    for index in range(settings.epochs):
        epoch.columns.copy_(columns[:, index])
        if replay is not None:
            replay.replay()
        elif cuda_graph and coef.device.type == "cuda" and settings.epochs > 1:
            replay = _run_and_capture(epoch.run)
        else:
            epoch.run()


def _run_and_capture(run) -> "torch.cuda.CUDAGraph":
    """Run `run()` once eagerly on a side stream (warm-up: cuBLAS, the allocator, the momentum buffers), then
    capture it as a CUDA graph on that stream (capturing does not execute it) -> the graph, to replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        run()
    return graph


class _EpochSteps:
    """The minibatch SGD steps of one epoch over all episodes, in place on coef [E, way, m] and bias [E, way] | None,
    reading the epoch's support order from `columns` [E, n] (basis columns; filled by the caller before each epoch)."""

    def __init__(
        self,
        coef: torch.Tensor,
        bias: torch.Tensor | None,
        gram: torch.Tensor,
        onehot: torch.Tensor,
        settings: FinetuneSettings,
    ) -> None:
        self.coef, self.bias, self.gram, self.onehot, self.settings = coef, bias, gram, onehot, settings
        n_support = gram.shape[-1] - coef.shape[1]
        self.columns = torch.empty(coef.shape[0], n_support, dtype=torch.long, device=coef.device)
        self.coef_sgd, self.bias_sgd = _SGDBuffer(settings), _SGDBuffer(settings)
        self.grad_coef = torch.empty_like(coef)

    def run(self) -> None:
        """One pass over the support set in minibatches of settings.batch_size."""
        settings, coef, bias, grad_coef = self.settings, self.coef, self.bias, self.grad_coef
        n_episodes, n_way, _ = coef.shape
        cosine = settings.similarity == "cosine"
        for start in range(0, self.columns.shape[1], settings.batch_size):
            idx = self.columns[:, start : start + settings.batch_size]  # [E, b]
            idx = idx.unsqueeze(1).expand(n_episodes, n_way, idx.shape[1])  # [E, way, b]
            batch = idx.shape[2]
            products = coef @ self.gram  # [E, way, m]: <W_k, basis_j>
            sim = products.gather(2, idx)  # [E, way, b]: <W_k, z_r>
            if cosine:
                norm = (products * coef).sum(-1, keepdim=True).sqrt_()  # [E, way, 1]: |W_k|
                sim.div_(norm)
            target = self.onehot.gather(2, idx)
            logits = sim - settings.margin * target if settings.margin else sim.clone()
            logits.mul_(settings.scale)
            if bias is not None:
                logits.add_(bias.unsqueeze(-1))
            dlogits = logits.softmax(dim=1).sub_(target).div_(batch)  # [E, way, b]: d(mean CE)/d logits
            dsim = dlogits * settings.scale
            grad_coef.zero_()
            if cosine:
                grad_coef.scatter_(2, idx, dsim / norm)
                grad_coef.addcmul_(coef, (dsim * sim).sum(-1, keepdim=True).div_(norm.square()), value=-1.0)
            else:
                grad_coef.scatter_(2, idx, dsim)
            self.coef_sgd.step(coef, grad_coef)
            if bias is not None:
                self.bias_sgd.step(bias, dlogits.sum(-1))


def _predict(
    query: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None, settings: FinetuneSettings
) -> torch.Tensor:
    """Predicted class [E, q] of queries [E, q, D] (in their dtype) under heads W [E, way, D], b [E, way] | None."""
    weights = weights.to(query.dtype)
    if settings.similarity == "cosine":  # cos = q·Ŵ / |q|: normalises [E, way, D], not the larger query tensor
        norms = torch.linalg.vector_norm(query, dim=-1, keepdim=True).clamp_min_(1e-12)
        scores = (query @ F.normalize(weights, dim=-1).transpose(1, 2)).div_(norms)
    else:
        scores = query @ weights.transpose(1, 2)
    scores.mul_(settings.scale)
    if bias is not None:
        scores.add_(bias.to(query.dtype).unsqueeze(1))
    return scores.argmax(dim=-1)


def _check_episode_tensors(
    support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, query_labels: torch.Tensor
) -> int:
    """Validate the shapes of a batch of episodes and return the number of classes (way)."""
    if support.dim() != 3 or query.dim() != 3 or support.shape[::2] != query.shape[::2]:
        raise EvaluationError(
            f"support must be [E, n, D] and query [E, q, D] with the same E and D; got "
            f"{tuple(support.shape)} and {tuple(query.shape)}"
        )
    if support_labels.shape != support.shape[:2] or query_labels.shape != query.shape[:2]:
        raise EvaluationError(
            f"labels must be [E, n] and [E, q]; got {tuple(support_labels.shape)} and "
            f"{tuple(query_labels.shape)} for support {tuple(support.shape)}, "
            f"query {tuple(query.shape)}"
        )
    if support.shape[1] == 0 or support_labels.min() < 0:
        raise EvaluationError("episodes need at least one support sample and labels >= 0")
    n_way = int(support_labels.max()) + 1
    if query_labels.numel() and (query_labels.min() < 0 or int(query_labels.max()) >= n_way):
        raise EvaluationError(f"query labels must lie in [0, {n_way}) (the support labels' range)")
    return n_way


def finetune_seeded(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    seeds: torch.Tensor,
    *,
    settings: FinetuneSettings,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    cuda_graph: bool = True,
) -> torch.Tensor:
    """Query accuracy [E] (float64, CPU) of episodes with given per-episode seeds [E], in chunks of `chunk_size`;
    on CUDA each epoch's steps are one CUDA graph launch unless `cuda_graph` is False (the same iterates)."""
    n_way = _check_episode_tensors(support, support_labels, query, query_labels)
    if seeds.shape != (support.shape[0],):
        raise EvaluationError(f"need one seed per episode: seeds {tuple(seeds.shape)}, episodes {support.shape[0]}")
    if chunk_size is None:
        chunk_size = default_chunk_size(device if device is not None else support.device)
    if chunk_size < 1:
        raise EvaluationError(f"chunk_size must be >= 1, got {chunk_size}")
    accs = []
    for start in range(0, support.shape[0], chunk_size):
        part = slice(start, start + chunk_size)
        _, _, acc = _finetune_chunk(
            support[part],
            support_labels[part],
            query[part],
            query_labels[part],
            seeds[part],
            settings,
            n_way,
            device,
            cuda_graph=cuda_graph,
        )
        accs.append(acc.cpu())
    return torch.cat(accs) if accs else torch.zeros(0, dtype=_WORK_DTYPE)


def finetune_episodes(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    *,
    similarity: str = "cosine",
    scale: float = 5.0,
    margin: float = 0.0,
    epochs: int = 100,
    batch_size: int = 4,
    lr: float = 0.01,
    momentum: float = 0.9,
    dampening: float = 0.9,
    weight_decay: float = 1e-3,
    generator: torch.Generator | None = None,
    bias: bool = False,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-episode query accuracy [E] in [0, 1] after fine-tuning a fresh head on support [E, way·shot, D]."""
    settings = FinetuneSettings(
        similarity=similarity,
        scale=scale,
        margin=margin,
        bias=bias,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
    )
    seeds = episode_seeds(support.shape[0], generator)
    return finetune_seeded(
        support, support_labels, query, query_labels, seeds, settings=settings, chunk_size=chunk_size, device=device
    )


class _ReferenceHead(nn.Module):
    """One episode's head as a plain module (the published heads): logits [B, way] of features [B, D]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, settings: FinetuneSettings) -> None:
        super().__init__()
        self.settings = settings
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone()) if bias is not None else None

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """features [B, D], labels [B] | None -> logits [B, way]; margin only when labels are given."""
        s = self.settings
        if s.similarity == "cosine":
            sim = F.linear(F.normalize(features, dim=-1), F.normalize(self.weight, dim=-1))
        else:
            sim = F.linear(features, self.weight)
        if labels is not None and s.margin:
            sim = sim - s.margin * F.one_hot(labels, sim.shape[-1]).to(sim.dtype)
        logits = s.scale * sim
        return logits + self.bias if self.bias is not None else logits


def reference_finetune(
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    query_labels: torch.Tensor,
    seed: int,
    settings: FinetuneSettings,
    n_way: int,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """The published per-episode loop (nn.Module head, torch.optim.SGD) on one episode: W [way, D], b, accuracy."""
    n_support, dim = support.shape
    w0, b0, perms = draw_episode_randomness(seed, n_way, dim, n_support, settings.epochs, settings.bias)
    head = _ReferenceHead(w0.to(dtype), b0.to(dtype) if b0 is not None else None, settings).to(support.device)
    optimizer = torch.optim.SGD(
        head.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        dampening=settings.dampening,
        weight_decay=settings.weight_decay,
    )
    support, query = support.to(dtype), query.to(dtype)
    for epoch in range(settings.epochs):
        perm = perms[epoch].to(support.device)
        for start in range(0, n_support, settings.batch_size):
            selected = perm[start : start + settings.batch_size]
            labels = support_labels[selected]
            loss = F.cross_entropy(head(support[selected], labels), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (head(query).argmax(dim=-1) == query_labels).to(torch.float64).mean().item()
    bias = head.bias.detach() if head.bias is not None else None
    return head.weight.detach(), bias, accuracy
