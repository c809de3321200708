"""Result images in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), as the public horde
keeps them in R2.

Keys are `<prefix><YYYY-MM-DD>/<lease id>.webp` for results and `<prefix>uploads/<lease id>.webp`
for uploads waiting for their submit; both are built only from the day and a lease id (see
horde_api/store/results.py), never from user input. Workers PUT their images straight to the
bucket with presigned URLs and clients GET results with presigned URLs, so image bytes pass
through the API only for inline (`r2: false`) results and for the check of an upload at submit.

Every failure to reach the bucket (after botocore's retries) is `ResultStoreUnavailable`; the
credentials never appear in a message or a log line.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from horde_api.settings import HordeSettings
from horde_api.store.results import (
    ResultStoreUnavailable,
    UploadCheck,
    is_lease_id,
    is_ref,
    make_ref,
)

log = logging.getLogger(__name__)
UPLOADS = "uploads/"
_MISSING = {"NoSuchKey", "404", "NotFound"}
# A bucket that is slow to answer is as good as down for a request waiting on it.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0


class S3SettingsError(ValueError):
    """The HORDE_RESULTS_S3_* settings cannot work; the message names the setting to fix."""


def _unavailable(action: str, error: Exception) -> ResultStoreUnavailable:
    # The error's code and class only: botocore's messages carry no secret, but request URLs
    # can (presigned ones do), so nothing of the request itself is logged.
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    reason = f"{type(error).__name__} {code}".strip()
    log.error("result bucket: %s failed (%s)", action, reason)
    return ResultStoreUnavailable(f"result storage unreachable ({action}: {reason})")


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING


def s3_client(settings: HordeSettings) -> Any:
    """A boto3 S3 client from the HORDE_RESULTS_S3_* settings, or S3SettingsError naming what
    is missing."""
    key_id = settings.results_s3_access_key_id
    secret = settings.results_s3_secret_access_key
    session = boto3.session.Session(
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        region_name=settings.results_s3_region or None,
    )
    if session.get_credentials() is None:
        raise S3SettingsError(
            "HORDE_RESULTS_S3_BUCKET is set but no S3 credentials were found: set"
            " HORDE_RESULTS_S3_ACCESS_KEY_ID and HORDE_RESULTS_S3_SECRET_ACCESS_KEY (or give them"
            " the standard AWS way: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a role)"
        )
    region = session.region_name
    if region is None:
        if not settings.results_s3_endpoint_url:
            # Presigned URLs are signed for one region: a guess would make them all fail.
            raise S3SettingsError(
                "HORDE_RESULTS_S3_REGION is not set (nor AWS_REGION): AWS S3 needs the bucket's"
                " region; for R2 use auto"
            )
        region = "us-east-1"  # what MinIO and most S3-compatible servers accept
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.results_s3_addressing_style},
        retries={"mode": "standard", "max_attempts": settings.results_s3_max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        # Checksums only where S3 requires them: R2 and MinIO do not all accept the newer
        # default ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    ca_bundle = settings.results_s3_ca_bundle
    return session.client(
        "s3",
        endpoint_url=settings.results_s3_endpoint_url or None,
        region_name=region,
        config=config,
        verify=str(ca_bundle) if ca_bundle else None,
    )


class S3ResultStore:
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        url_seconds: int = 3600,
        max_upload_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.bucket = bucket
        stripped = prefix.strip("/")
        self.prefix = f"{stripped}/" if stripped else ""
        self.url_seconds = url_seconds
        self.max_upload_bytes = max_upload_bytes

    @classmethod
    def from_settings(cls, settings: HordeSettings) -> S3ResultStore:
        store = cls(
            s3_client(settings),
            settings.results_s3_bucket,
            settings.results_s3_prefix,
            url_seconds=settings.results_s3_url_seconds,
            max_upload_bytes=settings.max_result_bytes,
        )
        store.check_bucket()
        return store

    def check_bucket(self) -> None:
        """Refuse to start on a bucket that does not exist or is not ours to use; a bucket that
        is only unreachable now is logged, not fatal (the API serves the queue without it)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise S3SettingsError(
                    f"HORDE_RESULTS_S3_BUCKET: there is no bucket {self.bucket!r} at this endpoint"
                ) from None
            if code in ("403", "AccessDenied"):
                raise S3SettingsError(
                    f"HORDE_RESULTS_S3_BUCKET: bucket {self.bucket!r} refuses these credentials"
                    " (HORDE_RESULTS_S3_ACCESS_KEY_ID or the AWS chain's)"
                ) from None
            log.warning("result bucket %r did not answer at start (%s)", self.bucket, code)
        except BotoCoreError as error:
            log.warning(
                "result bucket %r is unreachable at start (%s); results wait until it is back",
                self.bucket,
                type(error).__name__,
            )

    def _key(self, ref: str) -> str:
        return f"{self.prefix}{ref}"

    def _upload_key(self, lease_id: str) -> str:
        if not is_lease_id(lease_id):
            raise ValueError(f"not a lease id: {lease_id!r}")
        return f"{self.prefix}{UPLOADS}{lease_id}.webp"

    def _put(self, key: str, webp: bytes, action: str) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=webp, ContentType="image/webp")
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(action, error) from None

    def _get(self, key: str, action: str, limit: int | None = None) -> bytes | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=key)
            body = reply["Body"]
            try:
                return body.read(limit) if limit is not None else body.read()
            finally:
                body.close()
        except ClientError as error:
            if _is_missing(error):
                return None
            raise _unavailable(action, error) from None
        except BotoCoreError as error:
            raise _unavailable(action, error) from None

    def _delete(self, key: str, action: str) -> None:
        try:
            # S3 answers 204 for a key that is not there: deleting twice is harmless.
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(action, error) from None

    def put(self, lease_id: str, webp: bytes, now: float) -> str:
        ref = make_ref(lease_id, now)
        self._put(self._key(ref), webp, "store a result")
        return ref

    def read(self, ref: str) -> bytes | None:
        if not is_ref(ref):
            return None
        return self._get(self._key(ref), "read a result")

    def delete(self, ref: str) -> None:
        if is_ref(ref):
            self._delete(self._key(ref), "delete a result")

    def put_upload(self, lease_id: str, webp: bytes) -> None:
        self._put(self._upload_key(lease_id), webp, "store an upload")

    def take_upload(self, lease_id: str, now: float, check: UploadCheck) -> str | None:
        # The worker PUT its bytes straight to the bucket, unchecked: read them back (one byte
        # past the limit, so `check` sees an oversized upload without us reading all of it),
        # check and convert as our upload endpoint would have, then keep the result.
        key = self._upload_key(lease_id)
        raw = self._get(key, "read an upload", limit=self.max_upload_bytes + 1)
        if raw is None:
            return None
        ref = self.put(lease_id, check(raw), now)
        # If this fails the result is still kept: the janitor deletes the leftover upload once
        # the lease is over.
        with contextlib.suppress(ResultStoreUnavailable):
            self._delete(key, "delete a taken upload")
        return ref

    def upload_ids(self) -> set[str]:
        """Lease ids with an upload in the bucket (waiting for its submit, or abandoned)."""
        ids = set()
        start = f"{self.prefix}{UPLOADS}"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", []):
                    lease_id = item["Key"][len(start) :].split(".", 1)[0]
                    if is_lease_id(lease_id):
                        ids.add(lease_id)
        except (BotoCoreError, ClientError) as error:
            raise _unavailable("list uploads", error) from None
        return ids

    def delete_upload(self, lease_id: str) -> None:
        self._delete(self._upload_key(lease_id), "delete an upload")

    def upload_url(self, lease_id: str, token: str, base_url: str, expires_seconds: int) -> str:
        # Signed without a Content-Type, so the worker's `Content-Type: image/webp` (or none) is
        # accepted as it is; the URL itself is the authorisation, like our endpoint's token.
        return self._presign("put_object", self._upload_key(lease_id), expires_seconds)

    def result_url(self, ref: str, image_id: str, base_url: str) -> str:
        if not is_ref(ref):
            raise ValueError(f"not a result reference: {ref!r}")
        return self._presign("get_object", self._key(ref), self.url_seconds)

    def _presign(self, method: str, key: str, expires_seconds: int) -> str:
        # Signing happens here, without a request to the bucket: it works while the bucket is down.
        return str(
            self.client.generate_presigned_url(
                method,
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=max(1, int(expires_seconds)),
            )
        )
