"""The Lambda layer that carries Tessera's runtime dependencies (SPEC §7)."""
