"""An S3-compatible bucket as the store: object ``<prefix>/jobs/<job id>/<file name>``.

Chosen with ``MASKWEB_STORAGE_URL=s3://bucket/prefix``. Where the bucket is and who we are come from boto3's
own configuration, read by boto3 itself (``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for MinIO, Ceph or
another S3-compatible server, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or an instance role,
``AWS_DEFAULT_REGION``, ``~/.aws/config``). The bucket must exist; maskweb never creates or configures it.

A PUT is atomic in S3 (readers see the old object or the new one), so writes need no temporary names; a
write is spooled in memory up to SPOOL_BYTES and on disk beyond, then uploaded (in parts when large).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urlsplit

from .base import FileStore, JobFile, StoredFile, check_job_id, is_job_id

SPOOL_BYTES = 8 * 1024 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound"}


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"MASKWEB_STORAGE_URL must look like s3://bucket or s3://bucket/prefix, got {url!r} "
            "(leave it unset to keep files in the data directory)"
        )
    return parts.netloc, parts.path.strip("/")


class S3FileStore(FileStore):
    """Files in ``bucket`` under ``prefix``, through ``client`` (a boto3 S3 client; thread-safe)."""

    def __init__(self, bucket: str, prefix: str = "", client=None):
        if client is None:
            import boto3  # lazily: slow to import, and only bucket stores need it

            client = boto3.session.Session().client("s3")
        self.client = client
        self.bucket = bucket
        self.jobs_prefix = f"{prefix.strip('/')}/jobs/" if prefix.strip("/") else "jobs/"

    @classmethod
    def from_url(cls, url: str, client=None) -> S3FileStore:
        bucket, prefix = parse_storage_url(url)
        return cls(bucket, prefix, client)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.jobs_prefix}"

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def free_bytes(self) -> None:
        return None  # a bucket does not fill up; the per-user quotas still bound what is kept

    def _job_prefix(self, job_id: str) -> str:
        return f"{self.jobs_prefix}{check_job_id(job_id)}/"

    def key(self, job_id: str, kind: JobFile) -> str:
        return self._job_prefix(job_id) + kind.filename

    def _write(self, job_id: str, kind: JobFile, write: Callable[[BinaryIO], object]) -> None:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            write(spool)
            spool.seek(0)
            self.client.upload_fileobj(
                spool, self.bucket, self.key(job_id, kind), ExtraArgs={"ContentType": kind.media_type}
            )

    def open(self, job_id: str, kind: JobFile) -> StoredFile | None:
        from botocore.exceptions import ClientError  # lazily, with boto3

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(job_id, kind))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return StoredFile(
            obj["Body"], obj["ContentLength"], obj["LastModified"].timestamp(), obj["ETag"].strip('"')
        )

    def remove(self, job_id: str, kind: JobFile) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(job_id, kind))  # absent: still 204

    def _objects(self, prefix: str):
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def remove_job(self, job_id: str) -> None:
        keys = [{"Key": obj["Key"]} for obj in self._objects(self._job_prefix(job_id))]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000]})

    def job_ages(self) -> dict[str, float]:
        ages: dict[str, float] = {}
        for obj in self._objects(self.jobs_prefix):
            job_id, _, _name = obj["Key"][len(self.jobs_prefix) :].partition("/")
            if is_job_id(job_id):
                ages[job_id] = max(ages.get(job_id, 0.0), obj["LastModified"].timestamp())
        return ages
