"""Pure logic of the dashboard: colour bands, charts as SVG, explanations in Vietnamese,
signed sessions, PKCE."""
