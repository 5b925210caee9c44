"""Pseudonymisation of person keys at ingestion: HMAC-SHA256 with a key from the environment.

The raw person and household keys of a delivery are validated as delivered (length, uniqueness) and
replaced by ``HMAC-SHA256(key, value)`` (64 hex characters) as they are written to ``raw.<source>``; the
identifiers themselves never reach the warehouse. The same key gives the same pseudonym in every source and
cycle, so a person who draws SGB II and SGB XII is still counted once; without the key the pseudonyms
cannot be reversed by trying candidate identifiers.

The key comes from ``SOCIAL_MONITOR_PSEUDONYM_KEY``. Without it the clearly marked development key below is
used and every ingest says so in its log and metadata: fine for the synthetic sample city, never for real
data. Changing the key changes every pseudonym, so every load records the key's fingerprint
(:attr:`PseudonymKey.fingerprint`, a keyed hash of a fixed label: it identifies the key, it does not reveal
it) in ``raw.deliveries``, and a load under a key other than the warehouse's is refused. A new key needs a
full reload of every cycle (``make rekey``, social_monitor/rekey.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

KEY_ENV = "SOCIAL_MONITOR_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "DEVELOPMENT-ONLY-not-secret-set-SOCIAL_MONITOR_PSEUDONYM_KEY"
BLOCK_SIZE = 64  # SHA-256
# What a change of key needs (README, "Privacy"; social_monitor/rekey.py): named in every refusal of a load
REKEY_REMEDY = ("`make rekey` (checks that every cycle's deliveries are in the landing folder, empties the raw "
                "tables and raw.deliveries in one transaction, then reloads every cycle through Dagster)")
# What the fingerprint hashes: a fixed label that no delivered identifier has (it starts with a NUL byte,
# which no text file's value holds), so a fingerprint is never also the pseudonym of a person.
FINGERPRINT_LABEL = b"\0social-monitor pseudonym key fingerprint v1"


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    is_development: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PseudonymKey:
        env = os.environ if env is None else env
        value = env.get(KEY_ENV, "")
        if not value:
            return cls(DEVELOPMENT_KEY.encode(), is_development=True)
        if len(value) < 16:
            raise ValueError(f"{KEY_ENV} must be at least 16 characters long")
        return cls(value.encode(), is_development=False)

    @property
    def description(self) -> str:
        """For logs and metadata: which key, never the key itself."""
        if self.is_development:
            return f"DEVELOPMENT key (not secret; set {KEY_ENV} for real data)"
        return f"key from {KEY_ENV}"

    @property
    def fingerprint(self) -> str:
        """HMAC-SHA256 of ``FINGERPRINT_LABEL`` under the key (64 hex characters): the same key always gives
        the same fingerprint, another key another one; the key cannot be read back from it."""
        return hmac.new(self.secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()

    def pseudonym(self, value: str) -> str:
        return hmac.new(self.secret, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def sql(self, expression: str) -> str:
        """A DuckDB expression computing the same HMAC-SHA256 as :meth:`pseudonym` of a text expression. DuckDB
        folds the constant pads (``unhex('…')``) into BLOB constants once per query (EXPLAIN); the two SHA-256 of
        HMAC are the cost, and DuckDB has no SHA-256 that starts from a precomputed midstate (issue 14)."""
        key = self.secret if len(self.secret) <= BLOCK_SIZE else hashlib.sha256(self.secret).digest()
        key = key.ljust(BLOCK_SIZE, b"\0")
        inner = bytes(b ^ 0x36 for b in key).hex()
        outer = bytes(b ^ 0x5C for b in key).hex()
        return (f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode({expression}))))")
