"""Personal data on the in-memory log: sealed per person, exported, erased by destroying
the person's key, with what happened left intact."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Mapper

from application.accounts import AccountCommands
from application.auth import AuthCommands, LoginLimits, RateLimited
from application.authorization import Actor
from application.eventstore import EventStore
from application.privacy import EXPORTS_PER_HOUR, PrivacyCommands
from application.processes import MailPolicies
from domain.accounts import Account, EmailClaim, ResetRequests
from domain.errors import Conflict, DomainError, Forbidden, Invalid
from domain.privacy import ERASED, IMPERSONAL, PERSONAL, SUBJECT
from domain.registry import event_classes
from domain.roles import Role, Track
from domain.students import Student
from infrastructure.jwt_tokens import JwtTokens
from infrastructure.persistence import LogEvents
from infrastructure.privacy import MemoryKeyTable, SubjectKeys, key_encryption_key
from tests.unit.fakes import (
    Clock,
    Credentials,
    Hasher,
    Limiter,
    Mailbox,
    OneTime,
    Sessions,
    in_memory_store,
)

PASSWORD = "correct horse battery staple"
ADMIN = Actor(UUID(int=2), Role.ADMIN)


class Stores:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.forgotten: list[tuple[UUID, str, list[str]]] = []

    def forget(self, account_id: UUID, email: str, mentions: Sequence[str],
               files: Sequence[str]) -> None:
        self.credentials.forget(account_id)
        self.forgotten.append((account_id, email, list(files)))


class Rows:
    def rows_of(self, account_id: UUID) -> dict[str, list[dict[str, Any]]]:
        return {"rm_users": [{"id": str(account_id)}]}


@dataclass
class World:
    store: EventStore
    keys: MemoryKeyTable
    accounts: AccountCommands
    auth: AuthCommands
    privacy: PrivacyCommands
    stores: Stores
    sessions: Sessions
    root: Actor


@pytest.fixture
def world() -> Iterator[World]:
    keys = MemoryKeyTable()
    cipher = SubjectKeys(keys, key_encryption_key(b"unit credentials key"))
    with in_memory_store(cipher) as store:
        credentials, sessions, hasher = Credentials(), Sessions(), Hasher()
        tokens = JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600)
        auth = AuthCommands(store, credentials, hasher, sessions, tokens, OneTime(),
                            Limiter(), Clock(), LoginLimits())
        stores = Stores(credentials)
        accounts = AccountCommands(store, credentials, hasher, sessions)
        root = accounts.create_administrator("root@example.com", "Root", PASSWORD,
                                             Role.SUPERADMIN).account_id
        yield World(store, keys, accounts, auth,
                    PrivacyCommands(store, accounts, auth, Limiter(), cipher, stores, Rows(),
                                    sessions, LogEvents(store),
                                    lambda person: f"p-{str(person)[:8]}"),
                    stores, sessions, Actor(root, Role.SUPERADMIN))


def raw_log(store: EventStore) -> str:
    return "\n".join(n.state.decode() for n in store.recorder.select_notifications(1, 10_000))


def export(world: World, actor: Actor, person: UUID) -> dict[str, Any]:
    document = json.loads("".join(world.privacy.export(actor, person)))
    assert isinstance(document, dict)
    return document


def _register(world: World, email: str = "ada.lovelace@example.com",
              name: str = "Ada Lovelace") -> UUID:
    return world.accounts.register_student(email, name, PASSWORD,
                                           Track.DATA_PROFESSIONAL).account_id


# -- the declaration -------------------------------------------------------------------------

def _holds_text(hint: Any) -> bool:
    return "str" in str(hint) or "Any" in str(hint)


def test_every_text_field_of_every_event_type_is_declared_personal_or_not() -> None:
    unclassified = []
    for _, cls in event_classes():
        declared = PERSONAL.get(cls, frozenset()) | IMPERSONAL.get(cls, frozenset())
        for name, hint in typing.get_type_hints(cls).items():
            if name.startswith("originator") or typing.get_origin(hint) is typing.ClassVar:
                continue
            if _holds_text(hint) and name not in declared:
                unclassified.append(f"{cls.__qualname__}.{name}")
    assert unclassified == []


def test_no_field_is_declared_both_ways_and_personal_streams_name_their_person() -> None:
    for cls, fields in PERSONAL.items():
        assert not fields & IMPERSONAL.get(cls, frozenset()), cls
        owner = next(a for a in SUBJECT if cls.__qualname__.startswith(a.__name__ + "."))
        assert owner in SUBJECT


# -- sealing ---------------------------------------------------------------------------------

def test_personal_fields_are_sealed_in_the_log_and_read_back_as_written(world: World) -> None:
    person = _register(world)
    world.accounts.update_profile(Actor(person, Role.STUDENT), "Ada King")
    log = raw_log(world.store)
    assert "ada.lovelace@example.com" not in log and "Lovelace" not in log
    assert "Ada King" not in log
    account = world.store.load(Account, person)
    assert (account.email, account.name) == ("ada.lovelace@example.com", "Ada King")
    # One key per person, made on first use.
    assert person in world.keys.rows


def test_a_sealed_value_cannot_be_moved_to_another_persons_event(world: World) -> None:
    ada, bob = _register(world), _register(world, "bob@example.com", "Bob")
    cipher = world.privacy.cipher
    sealed = cipher.seal(ada, "secret note")
    forged = sealed.replace(str(ada), str(bob), 1)
    assert cipher.open(sealed) == "secret note"
    assert cipher.open(forged) is None
    assert cipher.open("not a sealed value") is None


# -- export ----------------------------------------------------------------------------------

def test_a_person_exports_their_data_and_an_administrator_anyones(world: World) -> None:
    person = _register(world)
    world.accounts.update_profile(Actor(person, Role.STUDENT), "Ada King")
    mine = export(world, Actor(person, Role.STUDENT), person)
    assert mine["account"]["email"] == "ada.lovelace@example.com"
    assert mine["read_models"] == {"rm_users": [{"id": str(person)}]}
    types = [e["type"] for e in mine["events"]]
    assert {"Account.Registered", "Account.ProfileUpdated", "Student.Enrolled",
            "EmailClaim.Claimed"} <= set(types)
    assert export(world, ADMIN, person)["account"]["name"] == "Ada King"
    other = _register(world, "eve@example.com", "Eve")
    with pytest.raises(Forbidden):
        export(world, Actor(other, Role.STUDENT), person)


def test_other_people_appear_in_an_export_as_pseudonyms(world: World) -> None:
    person = world.accounts.create_account(ADMIN, "ada@example.com", "Ada", PASSWORD,
                                           Role.TRAINER, None).account_id
    registered = next(e for e in export(world, Actor(person, Role.TRAINER), person)["events"]
                      if e["type"] == "Account.Registered")
    assert registered["data"]["actor_id"] == f"p-{str(ADMIN.id)[:8]}"
    assert str(ADMIN.id) not in json.dumps(registered)


# -- erasure ---------------------------------------------------------------------------------

def test_erasure_destroys_the_key_and_every_reader_sees_the_marker(world: World) -> None:
    person = _register(world)
    world.auth.request_password_reset("ada.lovelace@example.com", "127.0.0.1")
    world.privacy.erase(world.root, person, "erasure request 2026-12-04")
    account = world.store.load(Account, person)
    assert (account.email, account.name) == (ERASED, ERASED)
    assert account.erased and not account.active
    assert world.keys.rows[person] is None
    assert world.keys.rows[ResetRequests.id_for("ada.lovelace@example.com")] is None
    requests = ResetRequests.id_for("ada.lovelace@example.com")
    assert world.store.load(ResetRequests, requests).email == ERASED
    erased = [e for e in world.store.events.get(person) if isinstance(e, Account.Erased)]
    assert [(e.actor_id, e.reason) for e in erased] == [(world.root.id,
                                                         "erasure request 2026-12-04")]
    assert world.stores.forgotten == [(person, "ada.lovelace@example.com", [])]
    # What happened stays: the stream still holds every event, in order.
    assert [type(e).__name__ for e in world.store.events.get(person)] == [
        "Registered", "Deactivated", "Erased"]


def test_an_erased_persons_export_shows_markers_and_their_email_is_free_again(
        world: World) -> None:
    person = _register(world)
    world.privacy.erase(world.root, person, "request")
    document = export(world, ADMIN, person)
    assert document["account"]["email"] == ERASED and document["account"]["erased"]
    assert "ada.lovelace@example.com" not in json.dumps(document)
    again = _register(world, name="Ada Again")
    assert again != person
    claim = world.store.load(EmailClaim, EmailClaim.id_for("ada.lovelace@example.com"))
    assert claim.account_id == again
    assert world.store.load(Account, again).email == "ada.lovelace@example.com"
    found = world.auth.account_by_email("ada.lovelace@example.com")
    assert found is not None and found.id == again


def test_an_erased_person_cannot_log_in_or_be_reactivated(world: World) -> None:
    person = _register(world)
    world.privacy.erase(world.root, person, "request")
    with pytest.raises(DomainError):
        world.auth.login("ada.lovelace@example.com", PASSWORD, "127.0.0.1")
    account = world.store.load(Account, person)
    with pytest.raises(Conflict):
        account.reactivate(world.root.id, "undo")


def test_only_a_superadmin_erases_and_nobody_themself(world: World) -> None:
    person = _register(world)
    with pytest.raises(Forbidden):
        world.privacy.erase(ADMIN, person, "request")
    with pytest.raises(Conflict):
        world.privacy.erase(Actor(person, Role.SUPERADMIN), person, "request")


def test_erasing_again_finishes_the_work_and_records_nothing_new(world: World) -> None:
    person = _register(world)
    world.privacy.erase(world.root, person, "request")
    again = world.privacy.erase(world.root, person, "request")
    assert again.position == 0
    assert [type(e).__name__ for e in world.store.events.get(person)] == [
        "Registered", "Deactivated", "Erased"]
    assert len(world.stores.forgotten) == 2


def test_a_student_stream_stays_readable_with_its_personal_fields_erased(
        world: World) -> None:
    person = _register(world)
    student = world.store.load(Student, Student.id_for(person))
    student.change_track(Track.FULL_STACK, world.root.id, "asked by Ada Lovelace")
    world.store.commit(student)
    world.privacy.erase(world.root, person, "request")
    changed = [e for e in world.store.events.get(student.id) if hasattr(e, "new_track")]
    assert [(e.new_track, e.reason) for e in changed] == [("FSD", ERASED)]
    assert "Lovelace" not in raw_log(world.store)


def test_text_about_a_person_is_theirs_so_erasing_its_author_keeps_it(world: World) -> None:
    author = world.accounts.create_administrator("author@example.com", "Root Author", PASSWORD,
                                                 Role.ADMIN).account_id
    person = _register(world)
    student = world.store.load(Student, Student.id_for(person))
    student.change_track(Track.FULL_STACK, author, "moved after the placement talk")
    world.store.commit(student)
    assert any(e["type"] == "Student.TrackChanged"
               for e in export(world, Actor(author, Role.ADMIN), author)["events"])
    world.privacy.erase(world.root, author, "request")
    changed = [e for e in world.store.events.get(student.id) if hasattr(e, "new_track")]
    assert [(e.reason, e.actor_id) for e in changed] == [
        ("moved after the placement talk", author)]
    assert world.store.load(Account, author).name == ERASED


def test_erasure_keeps_deactivations_rules(world: World) -> None:
    trainer = world.accounts.create_account(world.root, "t@example.com", "Tess", PASSWORD,
                                            Role.TRAINER, None).account_id
    person = _register(world)
    world.accounts.assign_trainer(world.root, person, trainer)
    with pytest.raises(Conflict) as refused:  # a trainer's students are reassigned first
        world.privacy.erase(world.root, trainer, "request")
    assert refused.value.code == "TRAINER_HAS_STUDENTS"
    world.privacy.erase(world.root, person, "request")  # a student leaves their trainer
    assert world.store.load(Student, Student.id_for(person)).trainer_id is None
    world.privacy.erase(world.root, trainer, "request")
    assert world.store.load(Account, trainer).erased


def test_no_mail_goes_to_an_erased_person(world: World) -> None:
    mailbox = Mailbox()
    mail = MailPolicies(world.store, mailbox, OneTime(), "https://lms.example")
    person = _register(world)
    enrolled = next(e for e in world.store.events.get(Student.id_for(person))
                    if isinstance(e, Student.Enrolled))
    registered = next(iter(world.store.events.get(person, lte=1)))
    world.privacy.erase(world.root, person, "request")
    mail.welcome(enrolled)
    mail.verification(registered)  # type: ignore[arg-type]
    assert mailbox.sent == []


def test_a_returning_owner_of_an_erased_email_can_reset_their_password(world: World) -> None:
    person = _register(world)
    world.auth.request_password_reset("ada.lovelace@example.com", "127.0.0.1")
    world.privacy.erase(world.root, person, "request")
    again = _register(world, name="Ada Again")
    world.auth.request_password_reset("ada.lovelace@example.com", "127.0.0.1")
    streams = list(world.auth.reset_streams("ada.lovelace@example.com"))
    assert [s.email for s in streams] == [ERASED, "ada.lovelace@example.com"]
    asked = [e for e in world.store.events.get(streams[-1].id)
             if isinstance(e, ResetRequests.Asked)]
    world.auth.pass_on_reset(asked[-1])
    assert "PasswordResetRequested" in [type(e).__name__
                                        for e in world.store.events.get(again)]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "a\x00b",
                                    "erasing Ada Lovelace as asked",
                                    "for ADA.LOVELACE@example.com"])
def test_an_erasure_reason_is_text_naming_nobody_and_nothing_changes_without_one(
        world: World, reason: str) -> None:
    person = _register(world)
    with pytest.raises(Invalid):
        world.privacy.erase(world.root, person, reason)
    assert world.store.load(Account, person).active


def test_an_export_withholds_other_peoples_personal_fields(world: World) -> None:
    admin = world.accounts.create_administrator("boss@example.com", "Boss", PASSWORD,
                                                Role.ADMIN).account_id
    victim = world.accounts.create_account(Actor(admin, Role.ADMIN), "victim@example.com",
                                           "Victim Person", PASSWORD, Role.TRAINER,
                                           None).account_id
    document = export(world, Actor(admin, Role.ADMIN), admin)
    text = json.dumps(document)
    assert "victim@example.com" not in text and "Victim Person" not in text
    assert str(victim) not in text
    made = [e for e in document["events"]
            if e["type"] == "Account.Registered" and e["stream"] != str(admin)]
    assert made and made[0]["data"]["email"] == "[another person's]"
    assert made[0]["data"]["actor_id"] == str(admin)


def test_an_email_taken_again_leaves_the_erased_persons_export(world: World) -> None:
    person = _register(world)
    world.privacy.erase(world.root, person, "request")
    _register(world, name="Someone Else")
    text = json.dumps(export(world, ADMIN, person))
    assert "ada.lovelace@example.com" not in text and "Someone Else" not in text


def test_erasure_is_refused_while_the_persons_data_is_not_sealed(world: World) -> None:
    person = uuid4()
    account = Account(id=person, email="old@example.com", name="Old Plaintext",
                      role=Role.STUDENT.value, actor_id=person)
    plain = Mapper(transcoder=world.store.mapper.transcoder)
    world.store.recorder.insert_events([plain.to_stored_event(e)
                                        for e in account.collect_events()])
    assert world.store.load(Account, person).name == "Old Plaintext"
    with pytest.raises(Conflict) as refused:
        world.privacy.erase(world.root, person, "request")
    assert refused.value.code == "LOG_NOT_SEALED"
    assert world.store.load(Account, person).active


def test_exports_are_limited_per_caller(world: World) -> None:
    person = _register(world)
    me = Actor(person, Role.STUDENT)
    for _ in range(EXPORTS_PER_HOUR):
        export(world, me, person)
    with pytest.raises(RateLimited):
        world.privacy.export(me, person)


def test_an_export_holds_the_persons_reset_requests(world: World) -> None:
    person = _register(world)
    world.auth.request_password_reset("ada.lovelace@example.com", "127.0.0.1")
    events = export(world, Actor(person, Role.STUDENT), person)["events"]
    opened = [e for e in events if e["type"] == "ResetRequests.Opened"]
    assert [e["data"]["email"] for e in opened] == ["ada.lovelace@example.com"]
