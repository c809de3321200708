"""HORDE_RESULTS_S3_*: a configuration that cannot work is refused at start, naming the setting;
the secret key never shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from horde_api.app import build_result_store
from horde_api.settings import HordeSettings
from horde_api.store.results import FilesystemResultStore
from horde_api.store.s3 import S3ResultStore, S3SettingsError
from tests.api.store.conftest import SECRET_ACCESS_KEY, Bucket


@pytest.fixture
def no_aws_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere in the standard AWS chain (env, files, instance metadata)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_filesystem_is_the_default(tmp_path: Path) -> None:
    store = build_result_store(HordeSettings(data_dir=tmp_path))
    assert isinstance(store, FilesystemResultStore)
    assert store.root == tmp_path / "results"


def test_a_bucket_without_credentials_names_the_missing_settings(no_aws_chain: None) -> None:
    settings = HordeSettings(results_s3_bucket="results", results_s3_region="eu-west-1")
    with pytest.raises(S3SettingsError) as refused:
        build_result_store(settings)
    message = str(refused.value)
    assert "HORDE_RESULTS_S3_ACCESS_KEY_ID" in message
    assert "HORDE_RESULTS_S3_SECRET_ACCESS_KEY" in message


def test_a_key_id_without_its_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORDE_RESULTS_S3_BUCKET", "results")
    monkeypatch.setenv("HORDE_RESULTS_S3_ACCESS_KEY_ID", "AKIAONLYTHEID")
    with pytest.raises(ValidationError, match="HORDE_RESULTS_S3_SECRET_ACCESS_KEY is not set"):
        HordeSettings()
    monkeypatch.delenv("HORDE_RESULTS_S3_ACCESS_KEY_ID")
    monkeypatch.setenv("HORDE_RESULTS_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    with pytest.raises(ValidationError) as refused:
        HordeSettings()
    assert "HORDE_RESULTS_S3_ACCESS_KEY_ID is not set" in str(refused.value)
    assert SECRET_ACCESS_KEY not in str(refused.value)


def test_empty_credentials_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORDE_RESULTS_S3_ACCESS_KEY_ID", "")
    monkeypatch.setenv("HORDE_RESULTS_S3_SECRET_ACCESS_KEY", "")
    settings = HordeSettings()
    assert settings.results_s3_access_key_id is None
    assert settings.results_s3_secret_access_key is None


def test_aws_s3_without_a_region_is_refused(no_aws_chain: None) -> None:
    settings = HordeSettings(
        results_s3_bucket="results",
        results_s3_access_key_id="AKIAEXAMPLE",
        results_s3_secret_access_key=SECRET_ACCESS_KEY,
    )
    with pytest.raises(S3SettingsError, match="HORDE_RESULTS_S3_REGION"):
        build_result_store(settings)


def test_the_secret_never_shows_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORDE_RESULTS_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("HORDE_RESULTS_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    settings = HordeSettings()
    assert SECRET_ACCESS_KEY not in repr(settings) and SECRET_ACCESS_KEY not in str(settings)
    assert SECRET_ACCESS_KEY not in settings.model_dump_json()


def test_credentials_from_the_aws_chain_are_enough(
    bucket: Bucket, no_aws_chain: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {
        key: value
        for key, value in bucket.settings.items()
        if key not in ("results_s3_access_key_id", "results_s3_secret_access_key")
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHECHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    store = build_result_store(HordeSettings(**settings))
    assert isinstance(store, S3ResultStore)
    assert store.upload_ids() == set()


def test_upload_sweep_is_every_pass_on_disk_and_each_minute_with_s3() -> None:
    assert HordeSettings().resolved_upload_sweep_seconds() == 0
    assert HordeSettings(results_s3_bucket="b").resolved_upload_sweep_seconds() == 60
    assert (
        HordeSettings(results_s3_bucket="b", upload_sweep_seconds=5).resolved_upload_sweep_seconds()
        == 5
    )
