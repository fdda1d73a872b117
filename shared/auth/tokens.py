"""Issue development tokens: `python -m shared.auth.tokens --role officer --unit P21.SNV`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import jwt

from shared.auth.principal import Role
from shared.auth.security import dev_secret
from shared.settings import Settings


def issue_token(
    settings: Settings,
    role: Role | str,
    unit: str | None = None,
    subject: str | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """Sign a token with the configured shared secret (or the development secret)."""
    secret = settings.jwt_secret or dev_secret(settings)
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": subject or f"dev-{role}{'-' + unit if unit else ''}",
        "role": str(Role(role)),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl,
    }
    if unit:
        claims["unit"] = unit
    return jwt.encode(claims, secret, algorithm="HS256")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--unit", default=None, help="unit id, required for officers")
    parser.add_argument("--hours", type=float, default=12)
    args = parser.parse_args()
    if args.role == "officer" and not args.unit:
        parser.error("an officer token needs --unit")
    print(issue_token(Settings(), args.role, args.unit, ttl=timedelta(hours=args.hours)))


if __name__ == "__main__":
    main()
