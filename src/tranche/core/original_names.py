"""The originals' Spring property names, accepted as aliases of tranche's variables.

An operator replacing a Java service keeps its deployment manifests, which set Spring
properties as environment variables by relaxed binding: ``batch.execution.bulk-insert-
batch-size`` arrives as ``BATCH_EXECUTION_BULKINSERTBATCHSIZE`` (Spring's canonical
form, dashes dropped) or ``BATCH_EXECUTION_BULK_INSERT_BATCH_SIZE`` (dashes as
underscores, which Spring's legacy mapping also binds); both are read. A settings class
declares ``spring_properties = {"<spring.property>": "<field>"}`` and mixes in
:class:`SpringNames`; the source below sits *after* the environment source, so
tranche's own variable wins when both are set, and an alias whose field is set by
tranche's name is not even read (a stale Spring value cannot fail the start).

``spring.datasource.url`` is a JDBC URL with the user and password in separate
properties: :func:`jdbc_to_sqlalchemy` turns the three into an asyncpg URL. The
password is never part of an error message. pydantic-settings has no notion of JDBC or
of Spring's dashed names, hence this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy.engine import URL

__all__ = [
    "DATASOURCE_PASSWORD",
    "DATASOURCE_URL",
    "DATASOURCE_USERNAME",
    "SpringNames",
    "SpringPropertyError",
    "SpringPropertySource",
    "jdbc_to_sqlalchemy",
    "spring_env_names",
]

DATASOURCE_URL = "spring.datasource.url"
DATASOURCE_USERNAME = "spring.datasource.username"
DATASOURCE_PASSWORD = "spring.datasource.password"

#: JDBC driver properties with an asyncpg equivalent (asyncpg takes ``ssl`` as sslmode).
_JDBC_QUERY = {"sslmode": "ssl", "ssl": "ssl", "applicationname": "application_name"}


class SpringPropertyError(ValueError):
    """A Spring-named variable cannot be used (the message names it, never a password)."""


class SpringNames:
    """Mix into a ``BaseSettings`` to accept the original's Spring property names.

    ``spring_properties`` maps a Spring property to the field it feeds;
    ``spring_datasource`` names the field a ``spring.datasource.*`` triple feeds.
    """

    spring_properties: ClassVar[Mapping[str, str]] = {}
    spring_datasource: ClassVar[str | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SpringPropertySource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )


def spring_env_names(prop: str) -> tuple[str, ...]:
    """The environment variables relaxed binding reads ``prop`` from (canonical first)."""
    canonical = prop.replace(".", "_").replace("-", "").upper()
    dashed = prop.replace(".", "_").replace("-", "_").upper()
    return (canonical,) if dashed == canonical else (canonical, dashed)


def _own_env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names = [prefix + name.upper()]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names += [prefix + str(c).upper() for c in alias.choices]
    elif isinstance(alias, str):
        names.append(prefix + alias.upper())
    return names


class SpringPropertySource(PydanticBaseSettingsSource):
    """Values of the Spring-named variables, keyed by field (see the module docstring)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.environ = {k.upper(): v for k, v in os.environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads every alias at once (pydantic-settings' abstract API).
        return None, field_name, False

    def _shadowed(self, field_name: str) -> bool:
        """tranche's own variable for ``field_name`` is set: the alias is not consulted."""
        field = self.settings_cls.model_fields[field_name]
        return any(n in self.environ for n in _own_env_names(self.settings_cls, field_name, field))

    def _read(self, prop: str) -> tuple[str, str] | None:
        for env in spring_env_names(prop):
            if env in self.environ:
                return env, self.environ[env]
        return None

    def __call__(self) -> dict[str, Any]:
        cls = self.settings_cls
        out: dict[str, Any] = {}
        for prop, field_name in getattr(cls, "spring_properties", {}).items():
            if field_name in out or self._shadowed(field_name):
                continue
            found = self._read(prop)
            if found is not None:
                out[field_name] = found[1]
        target = getattr(cls, "spring_datasource", None)
        if target and not self._shadowed(target):
            url = self._read(DATASOURCE_URL)
            if url is not None:
                user = self._read(DATASOURCE_USERNAME)
                password = self._read(DATASOURCE_PASSWORD)
                out[target] = jdbc_to_sqlalchemy(
                    url[1],
                    user[1] if user else None,
                    password[1] if password else None,
                    variable=url[0],
                )
        return out


def jdbc_to_sqlalchemy(
    jdbc: str, username: str | None, password: str | None, *, variable: str = "JDBC URL"
) -> str:
    """``jdbc:postgresql://host:5432/db`` + user + password → ``postgresql+asyncpg://…``.

    User and password given separately win over ``user=``/``password=`` in the URL's
    query (both are valid JDBC). Raises :class:`SpringPropertyError` naming ``variable``, never the
    password (``load_settings`` reports it as a ``SettingsError``).
    """

    def refuse(why: str) -> SpringPropertyError:
        return SpringPropertyError(f"{variable}: {why}")

    text = jdbc.strip()
    if not text.lower().startswith("jdbc:postgresql:"):
        raise refuse("must be a PostgreSQL JDBC URL (jdbc:postgresql://host:port/database)")
    parts = urlsplit(text[len("jdbc:") :])
    if not parts.netloc:
        raise refuse("needs a host (jdbc:postgresql://host:port/database)")
    if "," in parts.netloc:
        raise refuse("several hosts are not supported; give one host")
    try:
        port = parts.port
    except ValueError:
        raise refuse("the port is not a number") from None
    query: dict[str, str] = {}
    user_in_url = pass_in_url = None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        lower = key.lower()
        if lower == "user":
            user_in_url = value
        elif lower == "password":
            pass_in_url = value
        elif lower in _JDBC_QUERY:
            query[_JDBC_QUERY[lower]] = value
        else:
            raise refuse(f"JDBC property {key!r} has no asyncpg equivalent; remove it")
    database = unquote(parts.path.lstrip("/")) or None
    url = URL.create(
        "postgresql+asyncpg",
        username=username or user_in_url or parts.username or None,
        password=password or pass_in_url or None,
        host=parts.hostname,
        port=port,
        database=database,
        query=query,
    )
    return url.render_as_string(hide_password=False)
