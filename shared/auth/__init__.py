"""Bearer-JWT authentication and role/unit authorisation shared by every service."""

from shared.auth.principal import Principal, Role
from shared.auth.security import (
    AuthConfig,
    current_principal,
    install_auth,
    require_roles,
)

__all__ = ["AuthConfig", "Principal", "Role", "current_principal", "install_auth", "require_roles"]
