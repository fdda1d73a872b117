"""The dashboard's routes: sign-in (OIDC + PKCE, development) and the pages."""
