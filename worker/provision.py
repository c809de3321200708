"""Turning the configured model sources into local files, downloading what is missing.

`NAME=reference` (the CLI's bare `--model NAME`) fetches the files the public horde's model
reference lists for NAME over plain HTTP, each checked against its sha256. A hub id not in the
local Hugging Face cache is fetched once with huggingface_hub (which honours `HF_ENDPOINT` and
`HF_TOKEN` and resumes broken files). Before any byte: what will be fetched, how large, and
whether the disk holds it. `offline` forbids every download and names what is missing instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from horde_worker.config import REFERENCE_SOURCE, WorkerSettings, is_hub_id
from horde_worker.downloads import DownloadError, DownloadStats, download_file, ensure_free_space
from horde_worker.downloads import human_size as size
from horde_worker.file_hashes import FileHashes
from horde_worker.model_reference import ReferenceModel, load_reference, require_model
from horde_worker.prediction import Prediction

log = logging.getLogger(__name__)

# Only the weights a pipeline loads: repos also carry fp16/EMA variants, .bin twins and
# original single-file checkpoints, which would multiply the download for nothing.
HUB_ALLOW = ["model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors"]
HUB_IGNORE = ["*.fp16.safetensors", "*.non_ema.safetensors", "*.ema.safetensors"]


class ProvisionError(RuntimeError):
    """A model cannot be made available; the message names it and what to do."""


@dataclass
class Provisioner:
    settings: WorkerSettings
    stats: DownloadStats = field(default_factory=DownloadStats)
    _reference: dict[str, ReferenceModel] | None = None

    @property
    def models_dir(self) -> Path:
        return self.settings.resolved_models_dir

    @property
    def hashes(self) -> FileHashes:
        return FileHashes(self.settings.cache_dir / "file-hashes.json")

    def reference(self) -> dict[str, ReferenceModel]:
        if self._reference is None:
            self._reference = load_reference(
                self.settings.model_reference_url,
                self.settings.cache_dir,
                offline=self.settings.offline,
            )
        return self._reference

    def local_sources(self) -> dict[str, str]:
        """Every configured model's local source, after fetching what is missing. Serving the
        public horde, every name must first be the reference's (worker/public_names.py)."""
        from horde_worker.public_names import is_public_horde, public_name_problems

        if is_public_horde(self.settings.horde_url):
            problems = public_name_problems(self.settings, self.reference(), self.hashes)
            if problems:
                raise ProvisionError(
                    "the public horde gets a model name only with the model reference's files:\n  "
                    + "\n  ".join(problems)
                )
        return {
            name: self.local_source(name, source)
            for name, source in self.settings.require_models().items()
        }

    def local_source(self, name: str, source: str) -> str:
        if source == REFERENCE_SOURCE:
            model = require_model(self.reference(), name, self.settings.model_reference_url)
            return str(self.reference_model(model))
        if is_hub_id(source):
            return self.hub_model(source)
        return source

    def reference_prediction(self, name: str, source: str) -> Prediction | None:
        """What the model reference says NAME predicts, when NAME is served from its files."""
        if source != REFERENCE_SOURCE:
            return None
        model = self.reference().get(name)
        return model.prediction if model is not None else None

    def missing_files(self, model: ReferenceModel) -> list[str]:
        """The model's files that are absent or do not match the reference's sha256."""
        hashes, folder = self.hashes, self.models_dir
        return [
            item.relative_path
            for item in model.files
            if not (item.sha256 and hashes.matches(folder / item.relative_path, item.sha256))
        ]

    def reference_model(self, model: ReferenceModel) -> Path:
        problem = model.problem()
        if problem:
            raise ProvisionError(f"model {model.name!r} cannot be fetched: {problem}")
        missing = self.missing_files(model)
        if not missing:
            return model.local_source(self.models_dir)
        total = model.size_on_disk_bytes
        what = f"{len(missing)} file(s) ({', '.join(missing)})"
        if self.settings.offline:
            raise ProvisionError(
                f"offline: model {model.name!r} is not downloaded: missing {what} in"
                f" {self.models_dir}{f', {size(total)}' if total else ''}; start once without"
                " --offline to fetch it"
            )
        if total is not None:
            already = sum(
                part.stat().st_size
                for relative in missing
                if (part := self.models_dir / f"{relative}.part").is_file()
            )
            ensure_free_space(self.models_dir, total - already, f"model {model.name!r}")
        log.info(
            "fetching model %s: %s, %s, into %s",
            model.name,
            what,
            size(total) if total is not None else "size not given by the reference",
            self.models_dir,
        )
        for item in model.files:
            if item.relative_path not in missing:
                continue
            assert item.sha256 is not None  # model.problem() refused files without one
            target = self.models_dir / item.relative_path
            download_file(item.url, target, item.sha256, stats=self.stats)
            self.hashes.remember(target, item.sha256)
        fetched = size(self.stats.bytes_fetched)
        log.info("model %s fetched (%s over the network)", model.name, fetched)
        return model.local_source(self.models_dir)

    def hub_model(self, repo_id: str) -> str:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            # A repo fetched before loads from the cache, without a request. The same patterns
            # as the download: huggingface_hub judges the cached snapshot complete against them.
            return str(
                snapshot_download(
                    repo_id,
                    local_files_only=True,
                    allow_patterns=HUB_ALLOW,
                    ignore_patterns=HUB_IGNORE,
                )
            )
        except LocalEntryNotFoundError:
            pass
        if self.settings.offline:
            raise ProvisionError(
                f"offline: hub model {repo_id!r} is not in the local Hugging Face cache"
                f" ({constants.HF_HUB_CACHE}); start once without --offline to download it"
            )
        try:
            plan = snapshot_download(
                repo_id, allow_patterns=HUB_ALLOW, ignore_patterns=HUB_IGNORE, dry_run=True
            )
            fetch = [item for item in plan if item.will_download]
            total = sum(item.file_size or 0 for item in fetch)
            ensure_free_space(Path(constants.HF_HUB_CACHE), total, f"hub model {repo_id!r}")
            log.info(
                "fetching hub model %s: %d file(s), %s, into %s",
                repo_id,
                len(fetch),
                size(total),
                constants.HF_HUB_CACHE,
            )
            folder = snapshot_download(
                repo_id, allow_patterns=HUB_ALLOW, ignore_patterns=HUB_IGNORE
            )
        except DownloadError:
            raise
        except Exception as error:  # huggingface_hub's errors: unknown repo, gated, network
            raise ProvisionError(f"hub model {repo_id!r} cannot be fetched: {error}") from error
        self.stats.bytes_fetched += total
        return str(folder)
