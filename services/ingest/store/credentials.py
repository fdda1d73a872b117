"""Source credentials encrypted at rest (AES-256-GCM, an AEAD), with key ids for rotation.

A stored `auth` keeps its non-secret fields readable (type, header, token_url, client_id,
username: what the API shows) and replaces the secret ones (`key`, `client_secret`, `password`)
by `sealed = {"kid", "nonce", "ct"}`: the secrets as JSON, encrypted with the key `kid`, the
source id as associated data (a sealed value copied onto another source does not open).

Keys come from `INGEST_CREDENTIAL_KEYS` = `kid:base64(32 bytes)[,kid:base64…]`; the first one
seals, every listed one opens. Rotation: put the new key first, keep the old ones listed, and
`reseal` (run at start-up) re-encrypts every row sealed with another key, or still in plain
text, with the current one; then the old key can go. Without the variable a development key is
generated once in `.run/dev-credential-key` (refused when ENV=production).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.settings import RUN_DIR

log = logging.getLogger("cchc.ingest.credentials")

SECRET_FIELDS = ("key", "client_secret", "password")
DEV_KEY_FILE = RUN_DIR / "dev-credential-key"


class CredentialError(Exception):
    """A sealed credential that no configured key opens (or a bad key configuration)."""


class Keyring:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise CredentialError("no credential key configured")
        for kid, key in keys:
            if len(key) != 32:
                raise CredentialError(f"credential key {kid!r} is not 32 bytes")
        self.current = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        keys = []
        for part in spec.split(","):
            kid, sep, value = part.strip().partition(":")
            if not sep or not kid:
                raise CredentialError("INGEST_CREDENTIAL_KEYS must be kid:base64key[,…]")
            try:
                keys.append((kid, base64.b64decode(value, validate=True)))
            except ValueError as exc:
                raise CredentialError(f"credential key {kid!r} is not base64") from exc
        return cls(keys)

    @classmethod
    def from_environment(cls, dev_file: Path = DEV_KEY_FILE) -> Keyring:
        spec = os.environ.get("INGEST_CREDENTIAL_KEYS", "").strip()
        if spec:
            return cls.parse(spec)
        if os.environ.get("ENV", "development").lower() == "production":
            raise CredentialError("production needs INGEST_CREDENTIAL_KEYS")
        if not dev_file.exists():
            dev_file.parent.mkdir(parents=True, exist_ok=True)
            dev_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
            dev_file.chmod(0o600)
        return cls([("dev", base64.b64decode(dev_file.read_text().strip()))])

    # ------------------------------------------------------------------ sealing

    def seal(self, auth: dict[str, Any], source_id: str) -> dict[str, Any]:
        """`auth` with its secret fields encrypted (a sealed auth is opened and sealed anew)."""
        plain = self.open(auth, source_id)
        hidden = {k: plain[k] for k in SECRET_FIELDS if k in plain}
        out = {k: v for k, v in plain.items() if k not in SECRET_FIELDS}
        nonce = secrets.token_bytes(12)
        ct = self._aead[self.current].encrypt(
            nonce, json.dumps(hidden).encode(), source_id.encode()
        )
        out["sealed"] = {
            "kid": self.current,
            "nonce": base64.b64encode(nonce).decode(),
            "ct": base64.b64encode(ct).decode(),
        }
        return out

    def open(self, auth: dict[str, Any], source_id: str) -> dict[str, Any]:
        """The auth with its secrets (an unsealed one, from before encryption, as it is)."""
        sealed = auth.get("sealed")
        if not isinstance(sealed, dict):
            return dict(auth)
        aead = self._aead.get(str(sealed.get("kid")))
        if aead is None:
            raise CredentialError(f"no credential key {sealed.get('kid')!r} is configured")
        try:
            plain = aead.decrypt(
                base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ct"]),
                source_id.encode(),
            )  # fmt: skip
        except Exception as exc:  # InvalidTag, bad base64: never show what was inside
            raise CredentialError("a sealed credential does not open") from exc
        out = {k: v for k, v in auth.items() if k != "sealed"}
        out.update(json.loads(plain))
        return out

    def is_current(self, auth: dict[str, Any]) -> bool:
        sealed = auth.get("sealed")
        return isinstance(sealed, dict) and sealed.get("kid") == self.current


async def reseal(pool: asyncpg.Pool, keyring: Keyring, ids: list[str] | None = None) -> int:
    """Seal every source's auth (of `ids`, or all) that is in plain text or sealed with another
    key than the current one; returns how many changed. One that no configured key opens is
    left as it is (its runs fail with an auth error until its key is listed again)."""
    changed = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, auth FROM ingest.sources WHERE $1::text[] IS NULL OR id = ANY($1) "
            "FOR UPDATE",
            ids,
        )
        for row in rows:
            auth = json.loads(row["auth"]) if isinstance(row["auth"], str) else row["auth"]
            if keyring.is_current(auth):
                continue
            try:
                sealed = keyring.seal(auth, row["id"])
            except CredentialError:
                log.warning("source credentials sealed with an unknown key",
                            extra={"source": row["id"]})  # fmt: skip
                continue
            await conn.execute(
                "UPDATE ingest.sources SET auth = $2::jsonb WHERE id = $1",
                row["id"], json.dumps(sealed),
            )  # fmt: skip
            changed += 1
    return changed
