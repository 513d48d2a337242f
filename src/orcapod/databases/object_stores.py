"""The clients that reach a store on object storage, configured like deltalake's.

``s3://`` URIs are served by pyarrow's own S3 client (``pyarrow.fs.S3FileSystem``,
``s3_filesystem``) and by obstore (``object_store_of``, the client deltalake's own storage
layer is built on), both configured from the ``storage_options`` given to deltalake: the
endpoint, credentials, region and plain-HTTP settings, under any of the names deltalake
accepts (``AWS_ENDPOINT_URL`` / ``aws_endpoint_url`` / ``endpoint``, ...); anything not given
comes from the environment, as for deltalake (pyarrow's client does not read the endpoint and
plain-HTTP variables itself: they are read here). Decision: not deltalake's own filesystem
handler (``deltalake.fs.DeltaStorageHandler``), which holds the GIL while it waits for the
network, so one slow request would stall every thread of the process. Which client serves
which read is ``orcapod.databases.table_files``'s concern.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.errors import InputValidationError

if TYPE_CHECKING:
    import obstore
    import obstore.exceptions as obstore_errors
    import obstore.store as obstores
    import pyarrow.fs as pafs
else:
    obstore = lazy_module("obstore")
    obstore_errors = lazy_module("obstore.exceptions")
    obstores = lazy_module("obstore.store")
    pafs = lazy_module("pyarrow.fs")

__all__ = ["check_bucket", "filesystem_of", "object_store_of", "s3_filesystem"]

#: each S3 setting (named as pyarrow's ``S3FileSystem`` argument where it has one) and the
#: ``storage_options`` keys deltalake accepts for it (lower-cased), first found wins
_S3_OPTIONS = {
    "access_key": ("aws_access_key_id", "access_key_id"),
    "secret_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "session_token", "aws_token", "token"),
    "region": ("aws_region", "region", "aws_default_region"),
    "endpoint_override": ("aws_endpoint_url", "aws_endpoint", "endpoint_url", "endpoint"),
    "allow_http": ("aws_allow_http", "allow_http"),
    "virtual_hosted": ("aws_virtual_hosted_style_request",),
}
#: settings pyarrow's S3 client does not take from the environment itself (the AWS SDK reads
#: credentials and region), read from these variables when ``storage_options`` lacks them,
#: as deltalake and obstore do
_S3_ENVIRONMENT = {
    "endpoint_override": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    "allow_http": ("AWS_ALLOW_HTTP",),
    "virtual_hosted": ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST",),
}
#: obstore's configuration key for each ``_S3_OPTIONS`` setting
_OBSTORE_KEYS = {
    "access_key": "aws_access_key_id",
    "secret_key": "aws_secret_access_key",
    "session_token": "aws_session_token",
    "region": "aws_region",
    "endpoint_override": "aws_endpoint",
    "allow_http": "aws_allow_http",
    "virtual_hosted": "aws_virtual_hosted_style_request",
}
_TRUE = ("true", "1", "yes", "on")


def filesystem_of(
    base: str, storage_options: Mapping[str, str] | None
) -> Callable[[], pafs.FileSystem] | None:
    """What makes the filesystem serving a store at ``base`` (a local directory or a URI),
    once, when first needed: local, S3, or None for other schemes (module docstring)."""
    if "://" not in base:
        return pafs.LocalFileSystem
    if base.startswith("s3://"):
        return functools.cache(functools.partial(s3_filesystem, storage_options))
    return None


def check_bucket(
    base: str, filesystem: Callable[[], pafs.FileSystem], objects: obstores.S3Store | None
) -> None:
    """Raise ``InputValidationError`` unless the bucket of the store at ``base`` exists (one
    request, through ``objects`` when given, else ``filesystem``; a bucket that cannot be
    checked, e.g. for lack of permission, passes)."""
    bucket = base.split("://", 1)[1].split("/", 1)[0]
    if objects is not None:
        try:
            next(iter(obstore.list(objects, prefix="_", chunk_size=1)), None)
            return
        except (obstore_errors.BaseError, OSError) as err:
            if "NoSuchBucket" not in str(err):
                return
    else:
        try:
            if filesystem().get_file_info(bucket).type != pafs.FileType.NotFound:
                return
        except (OSError, pa.ArrowException):
            return
    raise InputValidationError(
        f"The bucket {bucket!r} of the store {base!r} does not exist (or is not visible "
        "with these credentials); create it first, or pass an existing bucket."
    )


def _s3_settings(storage_options: Mapping[str, str] | None) -> dict[str, str]:
    """The ``_S3_OPTIONS`` settings ``storage_options`` gives (keys in any case)."""
    options = {k.lower(): str(v) for k, v in (storage_options or {}).items()}
    found = {
        name: next((options[k] for k in keys if k in options), None)
        for name, keys in _S3_OPTIONS.items()
    }
    return {name: value for name, value in found.items() if value is not None}


def s3_filesystem(storage_options: Mapping[str, str] | None) -> pafs.S3FileSystem:
    """pyarrow's S3 client configured like deltalake from ``storage_options`` (module
    docstring)."""
    given = _s3_settings(storage_options)
    for name, variables in _S3_ENVIRONMENT.items():
        found = next((os.environ[v] for v in variables if os.environ.get(v)), None)
        if name not in given and found is not None:
            given[name] = found
    allow_http = given.pop("allow_http", "").lower() in _TRUE
    virtual = given.pop("virtual_hosted", "").lower() in _TRUE
    kwargs: dict[str, object] = dict(given)
    endpoint = given.get("endpoint_override", "")
    if endpoint.startswith("http://"):
        kwargs["scheme"] = "http"
        kwargs["endpoint_override"] = endpoint.removeprefix("http://")
    elif endpoint.startswith("https://"):
        kwargs["endpoint_override"] = endpoint.removeprefix("https://")
    if allow_http:
        kwargs.setdefault("scheme", "http")
    kwargs["force_virtual_addressing"] = virtual
    kwargs["allow_delayed_open"] = True  # a small file is one PUT, not a multipart upload
    try:
        return pafs.S3FileSystem(**kwargs)
    except (ValueError, TypeError, pa.ArrowException) as err:
        raise InputValidationError(
            f"Cannot configure S3 access from storage_options: {err}. Pass the endpoint, "
            "credentials and region as deltalake expects them (e.g. AWS_ENDPOINT_URL, "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)."
        ) from err


def object_store_of(
    base: str, storage_options: Mapping[str, str] | None
) -> obstores.S3Store | None:
    """obstore's client for the bucket of an ``s3://`` store, configured like
    ``s3_filesystem`` (anything not given comes from the environment); None for other
    stores, or when obstore rejects the options (pyarrow's client reads instead)."""
    if not base.startswith("s3://"):
        return None
    config = {_OBSTORE_KEYS[name]: v for name, v in _s3_settings(storage_options).items()}
    bucket = base.split("://", 1)[1].split("/", 1)[0]
    try:
        return obstores.S3Store(bucket, config=config)  # type: ignore[arg-type]  # (S3Config keys)
    except (obstore_errors.BaseError, ValueError, TypeError):
        return None
