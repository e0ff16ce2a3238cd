"""One unlearning trainer for every method: a Hugging Face ``Trainer`` subclass.

The trainer only changes the loss: each step it runs the model on a batch of fine-tuning
records, asks the reference model for its logits when the method needs them, and hands both
to the method's loss (:mod:`siu_lib.methods`). Because it is a ``Trainer``, accelerate and
DeepSpeed configs work unchanged on a GPU machine.

The reference distribution p0 (spec section 3):

* **LoRA** (default): the same model with its adapters disabled (``disable_adapter()``), so no
  second copy of the weights is held. The projector, trained in full, is wrapped by peft's
  ``modules_to_save``, which keeps the original projector for the disabled-adapter pass.
* **full fine-tuning**: a frozen copy of the original model.

Masks are placed where the model actually predicts the answer: the labels come from
:func:`siu_lib.models.collate_examples` (after ``<image>`` is expanded into the image-feature
positions); the token mask marks the label positions whose characters fall inside the
record's mask span, read from the character offsets of the same encoding
(:func:`siu_lib.models.answer_span_mask`); the loss functions apply the next-token shift.
"""

from __future__ import annotations

import copy
import math
import random
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from .errors import ConfigError, DataFormatError
from .finetune_data import FTRecord
from .methods import LossInputs, Method, UnlearnTarget, get_method, with_seed
from .progress import progress_wanted
from .models import Example, collate_examples, default_lora_config, name_token_ids
from .results import atomic_write_json, run_metadata

FORGET_TARGETS = ("a", "b", "forget", "refusal", "import")

# ------------------------------------------------------------------------------ masks


def vocab_mask_for(tokenizer: Any, name: str, vocab_size: int) -> Tensor:
    """K_V (vocab_size,) bool: False on the name's token ids, True elsewhere."""
    mask = torch.ones(vocab_size, dtype=torch.bool)
    ids = [i for i in name_token_ids(tokenizer, name) if i < vocab_size]
    mask[ids] = False
    return mask


def collate_records(processor: Any, records: Sequence[FTRecord], image_root: str | Path | None = None
                    ) -> dict[str, Tensor]:
    """A training batch of fine-tuning records: the model inputs of
    :func:`siu_lib.models.collate_examples` plus ``token_mask`` (B, L) and ``is_forget`` (B,)."""
    examples = [Example(r.load_image(image_root), r.question, r.answer) for r in records]
    for r, ex in zip(records, examples):
        if r.has_image and ex.image is None:
            raise DataFormatError(f"record {r.question!r} names an image but none is loaded")
    batch = collate_examples(processor, examples, spans=[r.mask_span for r in records])
    batch["is_forget"] = torch.tensor([r.target in FORGET_TARGETS for r in records])
    return batch


# ------------------------------------------------------------------------------ config

#: the record orders :class:`TrainConfig` accepts (``data_order``)
DATA_ORDERS = ("stratified", "shuffle")


def check_data_order(data_order: str) -> None:
    """Raise :class:`ConfigError` naming ``data_order`` unless it is one of :data:`DATA_ORDERS`."""
    if data_order not in DATA_ORDERS:
        raise ConfigError(f"unknown data_order {data_order!r}; known: {DATA_ORDERS}")


def stratified_order(targets: Sequence[str], rng: random.Random) -> list[int]:
    """A permutation of ``range(len(targets))`` that spreads each target's records evenly.

    Record ``k`` (in a random order) of a target with ``n`` records gets the key
    ``(k + u) / n``, with one uniform offset ``u`` per target; sorting by key interleaves the
    targets so that any run of consecutive records holds each target in about its share.
    """
    by_target: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        by_target.setdefault(t, []).append(i)
    keyed = []
    for t in sorted(by_target):
        idx = by_target[t]
        rng.shuffle(idx)
        u = rng.random()
        keyed += [((k + u) / len(idx), rng.random(), i) for k, i in enumerate(idx)]
    return [i for *_, i in sorted(keyed)]


class StratifiedSampler(torch.utils.data.Sampler):
    """Yields :func:`stratified_order` of the records' targets; a new order every epoch,
    determined by ``seed`` and the epoch number."""

    def __init__(self, records: Sequence[FTRecord], seed: int) -> None:
        self.targets = [r.target for r in records]
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.targets)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch whose order the next pass yields (called by accelerate before a pass)."""
        self.epoch = epoch

    def __iter__(self):
        rng = random.Random(f"stratified-{self.seed}-{self.epoch}")
        self.epoch += 1  # a pass without set_epoch still gets the next epoch's order
        return iter(stratified_order(self.targets, rng))



@dataclass
class TrainConfig:
    """Optimisation settings shared by every method (spec section 4 gives the paper's).

    Attributes:
        steps: optimiser steps (paper: 6).
        batch_size: records per step (paper: 4).
        lr: learning rate of the LoRA parameters (or of all parameters without LoRA).
        projector_lr: learning rate of the multimodal projector, trained in full (paper 2e-5).
        use_lora: LoRA on the language model (True) or full fine-tuning of it (False).
        lora_r / lora_alpha / lora_dropout: LoRA settings (paper: 128 / 256 / 0.05).
        train_projector: train the projector (paper: yes).
        weight_decay: AdamW weight decay (paper: 0).
        scheduler: learning-rate schedule (paper: cosine).
        warmup_ratio: warm-up fraction of the steps (paper: 0.03). As in the paper's Hugging
            Face scripts the number of warm-up steps is rounded up (:meth:`warmup_steps`), so
            with 6 steps the first step runs at learning rate 0 (its batch only primes AdamW's
            moment estimates).
        data_order: order in which records are drawn (the paper is silent): ``"stratified"``
            (default) spreads every target's records evenly over the epoch, so each step sees
            the targets in about their proportions; ``"shuffle"`` is a plain random permutation
            (the Hugging Face default), which with 25 records and 6 steps of 4 can put both (b)
            records, or four of (c)'s or (d)'s seven, in the zero-lr warm-up step or the last
            step (a tenth of the peak lr). It applies to every method run by :func:`unlearn`.
        seed: seed of data order, LoRA initialisation and dropout.
        bf16: use bfloat16 autocast (None: on a GPU that supports it, never on CPU).
    """

    steps: int = 6
    batch_size: int = 4
    lr: float = 3e-4
    projector_lr: float = 2e-5
    use_lora: bool = True
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    train_projector: bool = True
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    data_order: str = "stratified"
    seed: int = 0
    bf16: bool | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not (self.lr > 0 and self.projector_lr >= 0):
            raise ConfigError(f"learning rates must be positive, got lr={self.lr}, "
                              f"projector_lr={self.projector_lr}")
        check_data_order(self.data_order)
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")

    def warmup_steps(self) -> int:
        """Warm-up steps: ``ceil(warmup_ratio * steps)``, as the paper's scripts round them
        (1 of 6 steps at the paper's 0.03)."""
        return math.ceil(self.warmup_ratio * self.steps)

    def training_arguments(self, output_dir: str | Path, progress: bool = False,
                           use_cuda: bool | None = None, grad_accum: int = 1,
                           extra: dict[str, Any] | None = None) -> TrainingArguments:
        """The ``transformers.TrainingArguments`` of this config: the fields of
        :data:`TRAINING_ARGUMENTS` under their Hugging Face names, the warm-up as a whole
        number of steps (:meth:`warmup_steps`), bf16 where asked (by default on a GPU that
        supports it), and the settings every unlearning run shares (:data:`FIXED_TRAINING_ARGUMENTS`).
        The fields in :data:`TRAINER_FIELDS` are not ``TrainingArguments``: the model wrapping
        and the trainer read them.

        ``grad_accum`` micro-batches of ``batch_size`` make one optimiser step (so one process
        with ``batch_size`` b and ``grad_accum`` n steps on the same records as n processes with
        b each); ``extra`` adds or replaces ``TrainingArguments`` fields for the machine the run
        is on (``deepspeed``, ``activation_checkpointing``, ``ddp_backend``, ...), never the
        method's (:class:`~siu_lib.errors.ConfigError` for a field of :data:`TRAINING_ARGUMENTS`)."""
        if grad_accum < 1:
            raise ConfigError(f"grad_accum must be >= 1, got {grad_accum}")
        extra = dict(extra or {})
        owned = sorted(set(extra) & {hf for hfs in TRAINING_ARGUMENTS.values() for hf in hfs})
        if owned:
            raise ConfigError(f"training arguments {owned} come from the TrainConfig; set its fields instead")
        use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
        bf16 = self.bf16 if self.bf16 is not None else (use_cuda and torch.cuda.is_bf16_supported())
        mapped = {hf: getattr(self, name) for name, hfs in TRAINING_ARGUMENTS.items() for hf in hfs}
        kwargs = {"output_dir": str(output_dir), "warmup_steps": self.warmup_steps(), "use_cpu": not use_cuda,
                  "bf16": bf16, "disable_tqdm": not progress_wanted(progress),
                  "gradient_accumulation_steps": grad_accum, **mapped, **FIXED_TRAINING_ARGUMENTS, **extra}
        return TrainingArguments(**kwargs)


#: :class:`TrainConfig` fields that are ``TrainingArguments``, with their Hugging Face names
TRAINING_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "steps": ("max_steps",), "batch_size": ("per_device_train_batch_size",), "lr": ("learning_rate",),
    "weight_decay": ("weight_decay",), "scheduler": ("lr_scheduler_type",), "seed": ("seed", "data_seed"),
}
#: :class:`TrainConfig` fields the model wrapping (:func:`prepare_model`) and the trainer read
#: instead; ``warmup_ratio`` and ``bf16`` become ``warmup_steps`` and ``bf16`` in
#: :meth:`TrainConfig.training_arguments`
TRAINER_FIELDS = ("projector_lr", "use_lora", "lora_r", "lora_alpha", "lora_dropout", "train_projector",
                  "data_order", "warmup_ratio", "bf16")
#: the ``TrainingArguments`` every unlearning run shares: no logging or checkpoints on disk,
#: the records' own columns kept, gradient-norm clipping at 1 (the Hugging Face default)
FIXED_TRAINING_ARGUMENTS = {"logging_strategy": "no", "save_strategy": "no", "report_to": "none",
                            "remove_unused_columns": False, "dataloader_num_workers": 0, "max_grad_norm": 1.0}


# ------------------------------------------------------------------------------ trainer


def reference_logits(model: torch.nn.Module, inputs: dict[str, Tensor],
                     reference_model: torch.nn.Module | None = None) -> Tensor:
    """p0's logits on the same inputs (image included): the frozen copy when given, else the
    model with its LoRA adapters disabled (the model inside a ``DistributedDataParallel`` or
    ``DataParallel`` wrapper, whose forward is only for the trained pass)."""
    with torch.no_grad():
        if reference_model is not None:
            return reference_model(**inputs).logits
        wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
        inner = model.module if isinstance(model, wrappers) else model
        with inner.disable_adapter():
            return inner(**inputs).logits


def method_step_loss(model: torch.nn.Module, batch: dict[str, Tensor], method: Method,
                     method_config: Any, vocab_mask: Tensor,
                     reference_model: torch.nn.Module | None = None
                     ) -> tuple[Tensor, dict[str, float], Any]:
    """One step's loss of a method on a batch from :func:`collate_records`: the model's
    forward pass, the reference pass when the method needs it, then the method's loss.
    Returns (loss, loss terms, model outputs)."""
    inputs = dict(batch)
    labels = inputs.pop("labels")
    token_mask = inputs.pop("token_mask")
    is_forget = inputs.pop("is_forget")
    outputs = model(**inputs)
    ref = reference_logits(model, inputs, reference_model) if method.needs_reference else None
    x = LossInputs(outputs.logits, ref, labels, token_mask, vocab_mask.to(outputs.logits.device),
                   is_forget)
    loss, terms = method.loss(x, method_config)
    return loss, terms, outputs


class _RecordDataset(torch.utils.data.Dataset):
    def __init__(self, records: Sequence[FTRecord]):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> FTRecord:
        return self.records[i]


def deepspeed_reference(reference: torch.nn.Module, accelerator: Any) -> Any:
    """A frozen reference model prepared for the DeepSpeed run ``accelerator`` drives: under
    ZeRO-3 sharded like the trained model (its parameters gathered layer by layer in the forward
    pass), under ZeRO-1/2 replicated on every device (stage 0), with no optimizer; in eval mode.
    Needs the optional ``deepspeed`` extra."""
    import deepspeed

    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    for key in ("optimizer", "scheduler"):
        config.pop(key, None)
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        zero["stage"] = 0
    engine, *_ = deepspeed.initialize(model=reference, config=config)
    engine.eval()
    return engine


@contextmanager
def gathered_weights(model: torch.nn.Module):
    """Inside it, a model trained under DeepSpeed ZeRO-3 has whole what ``save_pretrained``
    writes (the adapters and trained copies of a peft model, every weight of a full fine-tune),
    gathered from the processes' shards; every process must enter it. Without ZeRO-3 it does
    nothing."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        yield
        return
    import deepspeed

    params = ([p for p in model.parameters() if p.requires_grad] if hasattr(model, "peft_config")
              else list(model.parameters()))
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


class UnlearningTrainer(Trainer):
    """A ``Trainer`` whose loss is an unlearning method's.

    Args:
        method: the registered method.
        method_config: its config.
        vocab_mask: K_V (V,) for DMK (all True for methods that do not use it).
        reference_model: a frozen original model for full fine-tuning; ``None`` with LoRA
            (the reference is the model with its adapters disabled).
        projector_lr: learning rate of the projector's parameter group.
        data_order: ``"stratified"`` (default, as in :class:`TrainConfig`;
            :class:`StratifiedSampler`, needs a dataset of records) or ``"shuffle"`` (the
            ``Trainer``'s own random sampler).
        **kwargs: passed to ``transformers.Trainer``.
    """

    def __init__(self, *args: Any, method: Method, method_config: Any, vocab_mask: Tensor,
                 reference_model: torch.nn.Module | None = None, projector_lr: float | None = None,
                 data_order: str = "stratified", **kwargs: Any) -> None:
        check_data_order(data_order)
        super().__init__(*args, **kwargs)
        self.data_order = data_order
        self.method = method
        self.method_config = method_config
        self.vocab_mask = vocab_mask
        self.reference_model = reference_model
        self.projector_lr = projector_lr
        # the method's loss is a mean over its own batch: the Trainer divides it by the
        # gradient-accumulation steps (it would not for a model that takes loss kwargs)
        self.model_accepts_loss_kwargs = False
        if reference_model is not None:  # full fine-tuning: the frozen copy goes where the model is
            self.reference_model = (deepspeed_reference(reference_model, self.accelerator)
                                    if self.is_deepspeed_enabled else reference_model.to(self.args.device))
        self._micro: list[dict[str, float]] = []

    @property
    def history(self) -> list[dict[str, float]]:
        """The loss and its terms per optimiser step: with gradient accumulation, the mean over
        the step's micro-batches (each a mean over its own records, as the gradient is); in a
        distributed run, this process's share (:func:`gather_history` averages the processes)."""
        steps: dict[int, list[dict[str, float]]] = {}
        for entry in self._micro:
            steps.setdefault(int(entry["step"]), []).append(entry)
        return [_mean_terms(parts) for _, parts in sorted(steps.items())]

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Tensor],
                     return_outputs: bool = False, num_items_in_batch: Any = None):
        loss, terms, outputs = method_step_loss(model, inputs, self.method, self.method_config,
                                                self.vocab_mask, self.reference_model)
        if model.training:
            self._micro.append({"step": self.state.global_step + 1, "loss": loss.item(), **terms})
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.data_order == "stratified":
            records = getattr(dataset, "records", None)
            if records is None:
                raise ConfigError("data_order='stratified' needs a dataset with a .records list "
                                  f"(got {type(dataset).__name__}); use data_order='shuffle'")
            return StratifiedSampler(records, self.args.seed)
        return super()._get_train_sampler(dataset)

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (betas and eps from the ``TrainingArguments``) with the projector in its own
        parameter group (its own learning rate)."""
        if self.optimizer is None:
            model = model or self.model
            proj, rest = [], []
            for n, p in model.named_parameters():
                if p.requires_grad:
                    (proj if "multi_modal_projector" in n else rest).append(p)
            groups = [{"params": rest, "lr": self.args.learning_rate}]
            if proj:
                lr = self.args.learning_rate if self.projector_lr is None else self.projector_lr
                groups.append({"params": proj, "lr": lr})  # lr 0 freezes the projector
            self.optimizer = torch.optim.AdamW(
                groups, lr=self.args.learning_rate, weight_decay=self.args.weight_decay,
                betas=(self.args.adam_beta1, self.args.adam_beta2), eps=self.args.adam_epsilon)
        return self.optimizer


# ------------------------------------------------------------------------------ entry point


@dataclass
class UnlearnResult:
    """What :func:`unlearn` returns: the unlearned model and everything that made it."""

    model: torch.nn.Module
    method: str
    method_config: Any
    train_config: TrainConfig
    records: list[FTRecord]
    history: list[dict[str, float]]
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Save the adapter (loadable with ``PeftModel.from_pretrained``) or the full model,
        and ``unlearn.json`` with method, configs, seed, loss history, versions, commit and
        machine."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        atomic_write_json(folder / "unlearn.json", {
            **self.metadata, "method": self.method, "method_config": asdict(self.method_config),
            "train_config": asdict(self.train_config), "history": self.history,
            "records": [{"question": r.question, "answer": r.answer, "target": r.target,
                         "mask_span": r.mask_span, "has_image": r.has_image} for r in self.records],
            "seconds": self.seconds})
        return folder


def prepare_model(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """Wrap the original model for unlearning: LoRA (+ trainable projector) with the reference
    given by disabled adapters, or full fine-tuning of the language model + projector with a
    frozen copy as the reference. The vision tower stays frozen. The input model is not
    modified in the full fine-tuning case; with LoRA, peft injects adapters into it."""
    import peft

    torch.manual_seed(cfg.seed)
    if cfg.use_lora:
        lora = default_lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout,
                                   train_projector=cfg.train_projector)
        return peft.get_peft_model(model, lora), None
    reference = model
    trained = copy.deepcopy(model)
    for p in reference.parameters():
        p.requires_grad_(False)
    reference.eval()
    for n, p in trained.named_parameters():
        p.requires_grad_("vision_tower" not in n and (cfg.train_projector or "multi_modal_projector" not in n))
    return trained, reference


def unlearn(model: torch.nn.Module, processor: Any, target: UnlearnTarget | Sequence[UnlearnTarget],
            method: str = "siu", method_config: Any = None, train_config: TrainConfig | None = None,
            records: Sequence[FTRecord] | None = None, progress: bool = False, grad_accum: int = 1,
            training_args: dict[str, Any] | None = None) -> UnlearnResult:
    """Unlearn ``target.concept`` from ``model`` with a registered method.

    Args:
        model: the original model M0 (with LoRA it receives adapters; pass a copy to keep M0).
        processor: its processor.
        target: the concept, its one forget image and what the data builders need; or several
            targets, unlearned in one run (multi-concept unlearning, the paper's Table 3): the
            records of every target are merged, each keeping its own fake name and token-mask
            span, and the vocabulary mask K_V masks every target's name tokens (their union).
        method: a registry name (see :mod:`siu_lib.methods`).
        method_config: the method's config (default: the registered one, seeded with
            ``train_config.seed``).
        train_config: optimisation settings.
        records: fine-tuning records to use instead of the method's data builder (e.g. an
            imported LLaVA JSON file).
        progress: show the Trainer's progress bar.
        grad_accum: micro-batches of ``train_config.batch_size`` per optimiser step (see
            :meth:`TrainConfig.training_arguments`).
        training_args: ``TrainingArguments`` fields for the machine (DeepSpeed config,
            activation checkpointing, ...; :meth:`TrainConfig.training_arguments`). Launched by
            ``torchrun`` or ``accelerate launch`` on several processes, each process trains on
            its share of every step's records (``batch_size`` records each) and the gradients
            are averaged.

    Returns:
        An :class:`UnlearnResult` with the trained model and the per-step loss terms.
    """
    spec = get_method(method)
    tcfg = train_config or TrainConfig()
    mcfg = method_config if method_config is not None else with_seed(spec.config, tcfg.seed)
    targets = [target] if isinstance(target, UnlearnTarget) else list(target)
    if not targets:
        raise ConfigError("unlearn needs at least one target")
    names = ", ".join(t.name for t in targets)
    recs = list(records) if records is not None else [r for t in targets for r in spec.build_data(t, mcfg)]
    if not recs:
        raise DataFormatError(f"method {method!r} built no records for {names!r}")
    tokenizer = processor.tokenizer
    vocab_size = model.get_output_embeddings().weight.shape[0]
    vocab_mask = torch.stack([vocab_mask_for(tokenizer, t.name, vocab_size) for t in targets]).all(0)
    trained, reference = prepare_model(model, tcfg)
    with tempfile.TemporaryDirectory(prefix="siu-trainer-") as tmp:
        args = tcfg.training_arguments(tmp, progress, grad_accum=grad_accum, extra=training_args)
        trainer = UnlearningTrainer(
            model=trained, args=args, train_dataset=_RecordDataset(recs),
            data_collator=lambda rs: collate_records(processor, rs),
            method=spec, method_config=mcfg, vocab_mask=vocab_mask,
            reference_model=reference, projector_lr=tcfg.projector_lr, data_order=tcfg.data_order)
        if not progress:  # the per-step terms are in trainer.history; no printed log lines
            trainer.remove_callback(PrinterCallback)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    trained.eval()
    meta = run_metadata(None, tcfg.seed, concept=names,
                        vocab_mask_ids=sorted({i for t in targets for i in name_token_ids(tokenizer, t.name)}))
    return UnlearnResult(trained, method, mcfg, tcfg, recs, gather_history(trainer.history), seconds, meta)


def gather_history(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The loss history of the whole run: in a distributed run (``torch.distributed``
    initialised), each step's terms averaged over the processes, as their gradients are; the
    process's own history otherwise."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return history
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, history)
    return [_mean_terms(entries) for entries in zip(*parts)]


def _mean_terms(entries: Sequence[dict[str, float]]) -> dict[str, float]:
    """One history entry from several of the same optimiser step (micro-batches, processes):
    their step, and each loss term's mean."""
    return {"step": entries[0]["step"],
            **{k: sum(e[k] for e in entries) / len(entries) for k in entries[0] if k != "step"}}


def unlearn_sequentially(model: torch.nn.Module, processor: Any, targets: Sequence[UnlearnTarget],
                         method: str = "siu", method_config: Any = None,
                         train_config: TrainConfig | None = None,
                         training_args: dict[str, Any] | None = None) -> list[UnlearnResult]:
    """Unlearning requests that arrive one after another: each target is unlearned from the
    model the previous request left (its LoRA adapters merged into the weights), with that
    model as the request's reference, as a deployed model would be updated. Returns one
    :class:`UnlearnResult` per request, each holding the model after it (the last one has
    forgotten every target). ``model`` is modified (pass a copy to keep M0). ``training_args``:
    as in :func:`unlearn`."""
    if not targets:
        raise ConfigError("unlearn_sequentially needs at least one target")
    results = []
    for t in targets:
        result = unlearn(model, processor, t, method, method_config, train_config, training_args=training_args)
        model = result.model.merge_and_unload() if hasattr(result.model, "merge_and_unload") else result.model
        model.eval()
        results.append(replace(result, model=model))
    return results
