"""What a source may reach: network addresses, environment variables, files (one object).

``SourceAccess`` is built once from the settings and handed to config validation (at
``POST``/``PATCH /sources``) and to every run (``SourceContext.access``), so the same rules
are checked when a source is configured and again when it is used. The default is the strict
one: public addresses only, the default variable prefix, no stored values, no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from signup_sync.credentials.names import DEFAULT_PREFIX
from signup_sync.credentials.vault import Vault
from signup_sync.outbound.addresses import OutboundPolicy
from signup_sync.sources.secrets import Secrets

if TYPE_CHECKING:
    from signup_sync.settings import Settings
    from signup_sync.sources.base import SourceConfig
    from signup_sync.sources.secrets import Secrets

IMPORT_DIR_SETTING = "SIGNUP_SYNC_IMPORT_DIR"


class FileRefused(ValueError):
    """A file path outside the import directory (or no import directory configured)."""


@dataclass(frozen=True, slots=True)
class SourceAccess:
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    env_prefix: str = DEFAULT_PREFIX
    vault: Vault | None = None
    import_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None) -> SourceAccess:
        if settings is None:
            return cls()
        keys = settings.secrets_key_list
        return cls(
            outbound=OutboundPolicy.allowing(*settings.outbound_allow),
            env_prefix=settings.source_env_prefix,
            vault=Vault(keys) if keys else None,
            import_dir=settings.import_dir,
        )

    def secrets(self, config: SourceConfig, stored: Mapping[str, str] | None) -> Secrets:
        """The run's ``ctx.secrets`` for a config and its stored (encrypted) values."""
        return Secrets(
            config.secret_env_names(),
            stored=stored or {},
            vault=self.vault,
            prefix=self.env_prefix,
        )

    def import_path(self, raw: str) -> Path:
        """The file ``raw`` names, resolved (symlinks followed) inside the import directory.

        A relative path is taken under the directory. FileRefused when no directory is
        configured or the resolved path lies outside it (``..``, an absolute path, a symlink).
        """
        if self.import_dir is None:
            raise FileRefused(
                f"reading files from the server is off; set {IMPORT_DIR_SETTING} to the "
                "directory holding the exports (or upload the file with the sync request)"
            )
        root = self.import_dir.resolve()
        path = (root / raw).resolve()
        if not path.is_relative_to(root):
            raise FileRefused(f"the file must be inside {IMPORT_DIR_SETTING} ({root})")
        return path
