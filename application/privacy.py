"""Personal data in an immutable log: sealed per person, exported on request, erased by
destroying the person's key (crypto-shredding).

The log keeps every personal field (domain/privacy.py says which) encrypted under its
person's key. Every reader decodes events through `PersonalDataMapper`, so read models,
history, the events feed, exports and rebuilds all see the same thing: the text while the
key exists, `ERASED` once it is destroyed. What happened (an attempt's score, a
submission's state) is never personal and stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.accounts import AccountCommands
from application.audit import plain
from application.auth import AuthCommands, RateLimited
from application.authorization import ADMINISTRATORS, ERASERS, Actor
from application.eventstore import EventStore, retry_on_conflict
from application.ports import (
    LogReader,
    PersonalCipher,
    PersonalRows,
    PersonalStores,
    RateLimiter,
    SessionStore,
)
from domain.accounts import Account, EmailClaim, IdentityClaim
from domain.errors import Conflict, Forbidden, Invalid
from domain.privacy import ERASED, PERSON_ID_FIELDS, SUBJECT, personal_fields, stream_class
from domain.submissions import Submission
from domain.text import require_storable

EXPORT_PAGE = 500
EXPORTS_PER_HOUR = 30
# In an export, what stands for another person's personal field.
WITHHELD = "[another person's]"


@dataclass(frozen=True)
class Erasure:
    account_id: UUID
    position: int


class PrivacyCommands:
    def __init__(self, store: EventStore, accounts: AccountCommands, auth: AuthCommands,
                 limiter: RateLimiter, cipher: PersonalCipher,
                 stores: PersonalStores, rows: PersonalRows, sessions: SessionStore,
                 log: LogReader, pseudonym: Callable[[UUID], str]) -> None:
        self.store = store
        self.accounts = accounts
        self.auth = auth
        self.limiter = limiter
        self.rows = rows
        self.cipher = cipher
        self.stores = stores
        self.sessions = sessions
        self.log = log
        self.pseudonym = pseudonym

    def erase(self, actor: Actor, account_id: UUID, reason: str) -> Erasure:
        """Erase a person: record it, destroy their keys, forget what is kept outside the
        log. Asked again, it finishes what an interrupted erasure left."""
        if actor.role not in ERASERS:
            raise Forbidden("Only superadmins erase people", code="PERMISSION_DENIED")
        account = self.store.load(Account, account_id, "User")
        # Read before any key goes (an erased one reads ERASED), so that an erasure an
        # outage interrupted after its events can still be finished by asking again.
        email = account.email
        _check_reason(reason, account)
        files, streams = self._files_and_streams_of(account_id)
        if self.log.unsealed(streams):
            # Destroying the key would erase nothing: the log holds the text itself.
            raise Conflict("This person's data is not sealed yet; run `apranova privacy "
                           "migrate` first", code="LOG_NOT_SEALED")
        resets = ([] if email == ERASED else
                  [r.id for r in self.auth.reset_streams(email)])
        if account.active:
            # Deactivation's rules first: a trainer's students are reassigned before, a
            # student leaves their trainer, the last superadmin stays.
            self.accounts.deactivate(actor, account_id, "erasure")

        def command() -> int:
            person = self.store.load(Account, account_id, "User")
            person.erase(actor.id, reason)
            changed: list[Any] = [person]
            claim = self.store.find(EmailClaim, EmailClaim.id_for(email))
            if claim is not None and claim.account_id == account_id:
                claim.release(actor.id)
                changed.append(claim)
            for issuer, subject in person.identities.values():
                identity = self.store.find(IdentityClaim, IdentityClaim.id_for(issuer, subject))
                if identity is not None and identity.account_id == account_id:
                    identity.release()
                    changed.append(identity)
            return self.store.commit(*changed)

        position = retry_on_conflict(command)
        for stream in resets:
            self.cipher.destroy(stream)
        mentions = [v for v in (account.name, account.github_login,
                                *(subject for _, subject in account.identities.values()))
                    if v and v != ERASED and len(v) >= 3]
        self.stores.forget(account_id, email, mentions, files)
        # The person's own key last: until it goes, asking again finds all of the above.
        self.cipher.destroy(account_id)
        # Announced after the key is gone, so no process that hears it can still read it.
        self.sessions.revoke_all(account_id)
        self.store.forget_cached()
        return Erasure(account_id, position)

    def _files_and_streams_of(self, account_id: UUID) -> tuple[list[str], list[UUID]]:
        """The person's uploads no one else's submission holds, and their streams."""
        mine: set[str] = set()
        others: set[str] = set()
        streams: set[UUID] = set()
        for _, event, own in self._events_of(account_id, everything=True):
            if own:
                streams.add(event.originator_id)
            if isinstance(event, Submission.FileAttached):
                (mine if own else others).add(event.sha256)
        return sorted(mine - others), sorted(streams)

    # -- export ---------------------------------------------------------------------------

    def export(self, actor: Actor, account_id: UUID) -> Iterator[str]:
        """Everything kept about a person, as JSON text in pieces (for a streamed
        response): their account, the read models' rows about them, every event of
        theirs or caused by them (decoded, other people as pseudonyms), their files."""
        if actor.id != account_id and actor.role not in ADMINISTRATORS:
            raise Forbidden("People export their own data; administrators anyone's",
                            code="PERMISSION_DENIED")
        # Each export reads the whole log: a few an hour is plenty for a person.
        if wait := self.limiter.hit(f"export:{actor.id}", EXPORTS_PER_HOUR, 3600):
            raise RateLimited(wait)
        account = self.store.load(Account, account_id, "User")
        # Another process may still cache what an erased account held: the flag decides.
        erased = account.erased
        head = {"format": "apranova-personal-data/1", "subject": str(account_id),
                "account": {"id": str(account.id), "role": account.role.value,
                            "email": ERASED if erased else account.email,
                            "name": ERASED if erased else account.name,
                            "github_login": ERASED if erased and account.github_login
                            else account.github_login,
                            "identities": sorted(account.identities),
                            "two_factor": account.two_factor,
                            "active": account.active, "erased": erased}}
        head["read_models"] = self.rows.rows_of(account_id)
        # Reset requests are a stream per email, not per account: theirs by the address.
        resets = set() if erased else {r.id for r in self.auth.reset_streams(account.email)}
        return self._export(account_id, head, resets)

    def _export(self, account_id: UUID, head: dict[str, Any], resets: set[UUID]
                ) -> Iterator[str]:
        yield json.dumps(head)[:-1] + ', "events": ['
        files: list[dict[str, Any]] = []
        first = True
        for position, event, own in self._events_of(account_id, also=resets):
            if own and isinstance(event, Submission.FileAttached):
                files.append({"submission_id": str(event.originator_id), "key": event.key,
                              "filename": event.filename, "sha256": event.sha256,
                              "size": event.size, "content_type": event.content_type,
                              "download": f"/api/curriculum/submissions/{event.originator_id}/"
                                          f"deliverables/{event.key}/file/"})
            yield ("" if first else ", ") + json.dumps(
                self._exported(position, event, own, account_id))
            first = False
        yield '], "files": ' + json.dumps(files) + "}"

    def _events_of(self, account_id: UUID, everything: bool = False,
                   also: set[UUID] | None = None) -> Iterator[tuple[int, Any, bool]]:
        """(position, event, whether the stream is the person's) of the person's streams
        and of other events naming them (as the one who caused it, a trainer, a student
        taken), in log order; `everything`: every event; `also`: more streams of theirs.
        A stream is theirs while its events name them as its person (domain/privacy.py's
        SUBJECT): an email claim taken by someone else stops being."""
        theirs: set[UUID] = set(also or ())
        after = 0
        while page := self.log.events(after, EXPORT_PAGE):
            for position, event in page:
                after = position
                state = vars(event)
                attribute = SUBJECT.get(stream_class(type(event)))  # type: ignore[arg-type]
                if attribute == "id" and event.originator_id == account_id:
                    theirs.add(event.originator_id)
                elif attribute is not None and attribute in state:
                    if state[attribute] == account_id:
                        theirs.add(event.originator_id)
                    else:
                        theirs.discard(event.originator_id)
                own = event.originator_id in theirs
                if own or everything or any(state.get(name) == account_id
                                            for name in PERSON_ID_FIELDS):
                    yield position, event, own

    def _exported(self, position: int, event: Any, own: bool, account_id: UUID
                  ) -> dict[str, Any]:
        """An event as exported: other people as the analysts' pseudonyms, and in someone
        else's stream their personal fields withheld (an event only naming the person)."""
        withheld = set() if own else personal_fields(type(event))
        data: dict[str, Any] = {}
        for name, value in vars(event).items():
            if name in ("originator_id", "originator_version", "timestamp"):
                continue
            person = name in PERSON_ID_FIELDS and isinstance(value, UUID) and value != account_id
            data[name] = (WITHHELD if name in withheld else
                          self.pseudonym(value) if person else plain(value))
        stream = event.originator_id
        return {"position": position, "type": type(event).__qualname__,
                "stream": str(stream) if own else self.pseudonym(stream),
                "version": event.originator_version,
                "at": event.timestamp.isoformat(), "data": data}


def _check_reason(reason: str, account: Account) -> None:
    """An erasure's reason stays readable for good: text, and naming nobody erased."""
    require_storable(reason, "reason")
    if not reason.strip() or len(reason) > 500:
        raise Invalid("A reason of 1 to 500 characters is required", code="REASON_REQUIRED")
    named = [v for v in (account.name, account.email, account.github_login)
             if v and v != ERASED and len(v) >= 3]
    if any(v.casefold() in reason.casefold() for v in named):
        raise Invalid("The reason must not name the person erased", code="REASON_NAMES_PERSON",
                      field="reason")
