"""Kaggle datasets: one zip from ``/api/v1/datasets/download/<owner>/<slug>``, then safe extraction.

Authenticates with the user's API token (HTTP Basic, ``KAGGLE_USERNAME``/``KAGGLE_KEY`` or
``kaggle.json``). Kaggle publishes no checksum: the zip is checked by its ``PK`` magic, its size
and a clean extraction, and its sha256 is recorded (trust on first use). The API answers with a
redirect to signed storage URLs; credentials are never forwarded there, and signed URLs are
never written anywhere.
"""

from __future__ import annotations

import logging

from medcat_data.catalog.schema import KaggleSource
from medcat_data.loaders.credentials import kaggle_credentials
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, mirror_is_local
from medcat_data.loaders.transports import TransportContext, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel, origin_of

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK"
CREDENTIALS_HINT = (
    "medcat reads the Kaggle API token from KAGGLE_USERNAME and KAGGLE_KEY or from kaggle.json in "
    "$KAGGLE_CONFIG_DIR or ~/.kaggle (kaggle.com > Settings > API > Create New Token); accept the "
    "dataset's rules on its Kaggle page first if it asks you to."
)


class KaggleTransport:
    """Download and extract one Kaggle dataset."""

    def __init__(self, source: KaggleSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        upstream = f"{source.base_url.rstrip('/')}/api/v1/datasets/download/{source.owner}/{source.slug}"
        if source.dataset_version is not None:
            upstream += f"?datasetVersionNumber={source.dataset_version}"
        if mirror_is_local(ctx.mirror):
            # A local mirror holds the zip as kaggle/<owner>/<slug>.zip (the replica layout).
            self.url = apply_mirror(f"{source.base_url}/kaggle/{source.owner}/{source.slug}.zip", ctx.mirror)
        else:
            self.url = apply_mirror(upstream, ctx.mirror)
        cred = None if mirror_is_local(ctx.mirror) else kaggle_credentials()
        if cred is not None:
            ctx.secrets.add(cred.password)
            log.info("Kaggle credentials from %s", cred.origin)
        self.settings = HttpSettings(
            timeouts=ctx.options.timeouts,
            auth=cred,
            auth_origins=frozenset({origin_of(self.url)}) if cred else frozenset(),
        )

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        name = self.source.archive or f"{self.source.slug}.zip"
        return [
            RemoteFile(
                path=join_subdir(self.source.subdir, name),
                url=self.url,
                source=self.source.name,
                verified_by="magic",
                magic=ZIP_MAGIC,
                extract=True,
                key=name,
            )
        ]

    def open_channel(self) -> UrlChannel:
        return UrlChannel(self.settings)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, CREDENTIALS_HINT)


def make_transport(source: KaggleSource, ctx: TransportContext) -> KaggleTransport:
    return KaggleTransport(source, ctx)


