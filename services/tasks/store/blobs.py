"""Where evidence bytes live, and the virus-scan hook point.

`PostgresBlobStore` (the default: no extra server for `make run`) keeps a file as 1 MiB bytea
chunks in `evidence_chunks`, written in the request's transaction, so the file and the note
that cites it commit together; downloads read it back one chunk at a time. `S3BlobStore`
keeps it in an S3-compatible bucket (MinIO) when `TASKS_S3_BUCKET` is set. Neither side ever
holds a whole large file in memory.

`Scanner` is the virus-scan hook: `NoScanner` by default, `CommandScanner` runs
`TASKS_EVIDENCE_SCAN_COMMAND <path>` (e.g. `clamdscan --no-summary`): exit 0 clean, 1
infected, anything else a scanner failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shlex
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tasks.config import TasksSettings
from services.tasks.store.models import EvidenceChunk


def _read(f: IO[bytes], n: int) -> bytes:
    return f.read(n)


async def chunks_of(f: IO[bytes], size: int) -> AsyncIterator[bytes]:
    """Read an uploaded (spooled) file in chunks off the event loop."""
    f.seek(0)
    while True:
        chunk = await asyncio.to_thread(_read, f, size)
        if not chunk:
            return
        yield chunk


def sha256_of(f: IO[bytes]) -> str:
    f.seek(0)
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


class BlobStore(Protocol):
    name: str

    async def put(self, session: AsyncSession, key: str, f: IO[bytes], content_type: str) -> None:
        """Store the bytes of `f` under `key` (in `session`'s transaction where it can)."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, chunk by chunk."""


class PostgresBlobStore:
    name = "postgres"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], chunk_bytes: int) -> None:
        self.sessions = sessions
        self.chunk_bytes = chunk_bytes

    async def put(self, session: AsyncSession, key: str, f: IO[bytes], content_type: str) -> None:
        seq = 0
        async for chunk in chunks_of(f, self.chunk_bytes):
            await session.execute(
                insert(EvidenceChunk).values(storage_key=key, seq=seq, data=chunk)
            )
            seq += 1

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async with self.sessions() as session:
            seq = 0
            while True:
                data = await session.scalar(
                    select(EvidenceChunk.data).where(
                        EvidenceChunk.storage_key == key, EvidenceChunk.seq == seq
                    )
                )
                if data is None:
                    return
                yield bytes(data)
                seq += 1


class S3BlobStore:
    """An S3-compatible bucket (MinIO in docker-compose). boto3 is synchronous: its calls run
    in a thread; uploads stream from the spooled file (multipart above 8 MiB)."""

    name = "s3"

    def __init__(self, settings: TasksSettings) -> None:
        import boto3  # optional: only when an S3 store is configured

        assert settings.s3_bucket
        self.bucket = settings.s3_bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
            region_name=settings.s3_region,
        )
        self.chunk_bytes = settings.evidence_chunk_bytes

    async def put(self, session: AsyncSession, key: str, f: IO[bytes], content_type: str) -> None:
        f.seek(0)
        await asyncio.to_thread(
            self.client.upload_fileobj, f, self.bucket, key, ExtraArgs={"ContentType": content_type}
        )

    async def open(self, key: str) -> AsyncIterator[bytes]:
        obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        body = obj["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, self.chunk_bytes)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()


def make_store(
    settings: TasksSettings, sessions: async_sessionmaker[AsyncSession]
) -> PostgresBlobStore | S3BlobStore:
    if settings.s3_bucket:
        return S3BlobStore(settings)
    return PostgresBlobStore(sessions, settings.evidence_chunk_bytes)


# ----------------------------------------------------------------- virus scan hook


class Infected(Exception):
    pass


class ScanFailed(Exception):
    pass


class Scanner(Protocol):
    async def scan(self, f: IO[bytes]) -> str:
        """'clean' or 'not_scanned'; raises Infected or ScanFailed."""


class NoScanner:
    async def scan(self, f: IO[bytes]) -> str:
        return "not_scanned"


def _copy_to_temp(f: IO[bytes]) -> str:
    f.seek(0)
    fd, path = tempfile.mkstemp(prefix="cchc-evidence-")
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            out.write(chunk)
    f.seek(0)
    return path


class CommandScanner:
    def __init__(self, command: str, timeout_s: float = 120) -> None:
        self.argv = shlex.split(command)
        self.timeout_s = timeout_s

    async def scan(self, f: IO[bytes]) -> str:
        path = await asyncio.to_thread(_copy_to_temp, f)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                path,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                code = await asyncio.wait_for(proc.wait(), self.timeout_s)
            except TimeoutError as exc:
                proc.kill()
                raise ScanFailed("the virus scanner timed out") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if code == 0:
            return "clean"
        if code == 1:
            raise Infected("the virus scanner flagged the file")
        raise ScanFailed(f"the virus scanner failed (exit {code})")


def make_scanner(settings: TasksSettings) -> Scanner:
    if settings.evidence_scan_command:
        return CommandScanner(settings.evidence_scan_command)
    return NoScanner()
