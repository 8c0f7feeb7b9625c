"""userdb rows: users with their roles, refresh tokens and password-reset tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tranche.doctoral.seed.base import SeedBase, insert_rows, next_id, slug
from tranche.doctoral.tables import userdb as U

__all__ = ["PeopleSeeding"]


class PeopleSeeding(SeedBase):
    async def _role_ids(self) -> dict[str, int]:
        async with self.userdb.transaction() as s:
            have = dict((await s.execute(sa.select(U.roles.c.name, U.roles.c.id))).all())
            missing = [{"name": n} for n in U.ROLE_NAMES if n not in have]
            if missing:
                await s.execute(sa.insert(U.roles), missing)
                have = dict((await s.execute(sa.select(U.roles.c.name, U.roles.c.id))).all())
        return {str(k): int(v) for k, v in have.items()}

    async def users(self, count: int, role: str) -> list[int]:
        """``count`` enabled users holding ``role``; returns their ids."""
        roles = await self._role_ids()
        first_id = await next_id(self.userdb, U.users)
        users, links = [], []
        for i in range(count):
            uid = first_id + i
            first, last = self.fake.first_name(), self.fake.last_name()
            created = self.now - timedelta(days=self.rng.randint(30, 2900))
            users.append(
                {
                    "id": uid,
                    "last_name": last,
                    "first_name": first,
                    "email": f"{slug(first)}.{slug(last)}.{uid}@{self._domain(role)}",
                    "password": "$2a$10$"
                    + "".join(self.rng.choices("abcdefghijkABCDEFGH0123456789./", k=53)),
                    "phone_number": self.fake.phone_number(),
                    "adresse": self.fake.street_address(),
                    "ville": self.fake.city(),
                    "pays": "France",
                    "enabled": True,
                    "created_at": created,
                    "updated_at": created,
                    "account_status": "ACTIVE",
                    "failed_login_attempts": 0,
                    "lockout_expiration": None,
                    "profile_complete": True,
                }
            )
            links.append({"user_id": uid, "role_id": roles[role]})
        await insert_rows(self.userdb, U.users, users)
        await insert_rows(self.userdb, U.user_roles, links)
        self.report.add(f"users {role}", count)
        return list(range(first_id, first_id + count))

    @staticmethod
    def _domain(role: str) -> str:
        return "etu.univ-exemple.fr" if role == "ROLE_DOCTORANT" else "univ-exemple.fr"

    async def tokens(
        self, user_ids: Sequence[int], expired_share: float = 0.6, reset_share: float = 0.5
    ) -> None:
        """One refresh token per user (UTC, 7-day life) and reset tokens (15-minute life)."""
        refresh: list[dict[str, Any]] = []
        reset: list[dict[str, Any]] = []
        first_reset = await next_id(self.userdb, U.password_reset_tokens)
        first_refresh = await next_id(self.userdb, U.refresh_token)
        for n, uid in enumerate(user_ids):
            expired = self.rng.random() < expired_share
            offset = (
                -timedelta(minutes=self.rng.randint(1, 60 * 24 * 60))
                if expired
                else timedelta(minutes=self.rng.randint(1, 60 * 24 * 7))
            )
            refresh.append(
                {
                    "id": first_refresh + n,
                    "user_id": uid,
                    "token": self.fake.uuid4(),
                    "expiry_date": self.now + offset,
                }
            )
            self.report.add("refresh_token expired" if expired else "refresh_token valid")
            if self.rng.random() < reset_share:
                r_expired = self.rng.random() < expired_share
                r_offset = (
                    -timedelta(minutes=self.rng.randint(1, 60 * 24 * 30))
                    if r_expired
                    else timedelta(minutes=self.rng.randint(1, 15))
                )
                reset.append(
                    {
                        "id": first_reset + len(reset),
                        "token": self.fake.uuid4(),
                        "user_id": uid,
                        "expiration_date": self.now + r_offset,
                        "used": r_expired and self.rng.random() < 0.5,
                    }
                )
                key = "expired" if r_expired else "valid"
                self.report.add(f"password_reset_tokens {key}")
        await insert_rows(self.userdb, U.refresh_token, refresh)
        await insert_rows(self.userdb, U.password_reset_tokens, reset)
