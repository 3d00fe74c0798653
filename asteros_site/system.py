"""The seed's Python API: ``AsterOS``, registration from code, and interfaces.

    from cosmos.cosmos import Cosmos
    from asteros_site.system import AsterOS

    cosmos = Cosmos()
    os = AsterOS(name="MyOS", cosmos=cosmos)
    os.register_agent("chat-agent", {"provider": "scripted", "system_prompt": "Be brief."})
    os.register_stars("chat-team", Stars(cosmos, "ChatTeam").add_member("leader", "chat-agent", "leader"))
    os.register_workflow("pipeline", {"definition": {"steps": [...]}})
    os.add_interface(MyInterface())
    os.serve()                                # or let `manage.py runserver` serve it

Registering only records, so an app's ``asteros.py`` (imported by autodiscovery, like
``admin.py``) touches no database at import time. ``start()`` writes each registration as a row
marked ``source="code"`` (created or updated: it runs at every start), then starts the
interfaces and tells each about everything registered. After start, a registration is written
and announced at once, and an added interface is started and told about everything so far.

Every ``AsterOS`` of the process is started by ``start_all()``, which every way of serving
calls before it answers (``asteros_site.serving.start_serving``). ``default_os()`` is the
process's own instance, carrying the interfaces listed in ``ASTEROS_INTERFACES``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.module_loading import import_string

from cosmos.cosmos import Cosmos
from cosmos.kinds import collection_of
from cosmos.models import AGENT_KIND, Agent, Source
from cosmos.services.agents import AGENT_FIELDS
from cosmos.services.errors import Invalid
from cosmos.validators import slug_id_validator
from interfaces.base import Interface
from interfaces.http.registry import AlreadyRegistered, NotRegistered
from stars.models import STAR_KIND
from workflows.models import WORKFLOW_KIND
from workflows.services import upsert_workflow

logger = logging.getLogger(__name__)

STAR_FIELDS = ("name", "description", "enabled", "mode", "config")
WORKFLOW_FIELDS = ("name", "description", "enabled", "definition")
MEMBER_FIELDS = ("name", "agent", "agent_id", "role", "description")

# What the seed's API registers from code, by run kind (the catalogue's names): the interface
# callback that announces one (the seed's names). Writing one is each kind's own code (_persist).
CALLBACKS = {
    AGENT_KIND: "on_agent_registered",
    STAR_KIND: "on_stars_registered",
    WORKFLOW_KIND: "on_workflow_registered",
}

_instances: weakref.WeakSet[AsterOS] = weakref.WeakSet()
_instances_lock = threading.Lock()
_default: AsterOS | None = None


class AsterOS:
    """One operating system: agents, stars and workflows registered from code, and interfaces."""

    def __init__(
        self,
        name: str | None = None,
        cosmos: Cosmos | None = None,
        *,
        interfaces: Iterable[Interface | type | str] = (),
        http: bool = True,
    ) -> None:
        self.name = name or settings.ASTEROS.name
        self.cosmos = cosmos or Cosmos()
        # By kind: what was registered (id -> fields or spec), then the rows written from it.
        self._registered: dict[str, dict[str, Any]] = {kind: {} for kind in CALLBACKS}
        self._rows: dict[str, dict[str, Any]] = {kind: {} for kind in CALLBACKS}
        self._interfaces: dict[str, Interface] = {}
        self._failed_start: set[str] = set()
        self._started = False
        self._lock = threading.RLock()
        if http:
            from interfaces.http.interface import HTTPInterface

            self.add_interface(HTTPInterface())
        for interface in interfaces:
            self.add_interface(interface)
        with _instances_lock:
            _instances.add(self)

    def __repr__(self) -> str:
        return f"<AsterOS {self.name!r} {'started' if self._started else 'not started'}>"

    @property
    def started(self) -> bool:
        return self._started

    # --- registration (the seed's RegisterAgent / RegisterStars / RegisterWorkflow)

    def register_agent(self, agent_id: str, agent: Any) -> None:
        """Register an agent: an ``Agent`` (unsaved is fine), a mapping of its fields, or an
        object with those attributes (e.g. an ``AgentSpec``)."""
        _check_id(agent_id, AGENT_KIND)
        self._register(AGENT_KIND, agent_id, agent_fields(agent))

    def register_stars(self, stars_id: str, stars: Any) -> None:
        """Register a star: a ``stars.stars.Stars`` (the seed's ``stars.New``), a ``Star``, a
        mapping or an object, with ``members`` as ``(name, agent_id, role)`` tuples, mappings
        or objects."""
        _check_id(stars_id, STAR_KIND)
        self._register(STAR_KIND, stars_id, as_stars(stars_id, stars, self.cosmos))

    def register_workflow(self, workflow_id: str, workflow: Any) -> None:
        """Register a workflow: a ``Workflow``, a mapping, or an object with a ``definition``."""
        _check_id(workflow_id, WORKFLOW_KIND)
        self._register(WORKFLOW_KIND, workflow_id, workflow_fields(workflow))

    def registered(self) -> dict[str, list[str]]:
        """The ids registered, by collection: ``{"agents": [...], "stars": [...], "workflows": [...]}``."""
        return {collection_of(kind): list(ids) for kind, ids in self._registered.items()}

    # --- interfaces (the seed's AddInterface)

    @property
    def interfaces(self) -> dict[str, Interface]:
        return dict(self._interfaces)

    def add_interface(self, interface: Interface | type | str) -> Interface:
        """Add an interface (an instance, a class or a dotted path). Added to a started OS, it
        is started and told about everything already registered."""
        interface = resolve_interface(interface)
        with self._lock:
            if interface.name in self._interfaces:
                raise AlreadyRegistered(f"An interface named {interface.name!r} is already added to {self.name}.")
            self._interfaces[interface.name] = interface
            if self._started:
                self._start_interface(interface)
        return interface

    def remove_interface(self, name: str) -> Interface:
        """Remove an interface by name, stopping it if the OS is started."""
        with self._lock:
            interface = self._interfaces.pop(name, None)
            if interface is None:
                raise NotRegistered(f"No interface named {name!r} in {self.name}.")
            if self._started and name not in self._failed_start:
                _call(interface, "stop")
            self._failed_start.discard(name)
        return interface

    # --- lifecycle

    def start(self, *, strict: bool = True) -> None:
        """Write the registrations to the database, then start the interfaces. Idempotent.

        With ``strict`` a registration that cannot be written raises (after the others are
        written); without, it is logged and left out.
        """
        with self._lock:
            if self._started:
                return
            first_error: Exception | None = None
            for kind, ids in self._registered.items():
                for object_id in list(ids):
                    try:
                        self._persist(kind, object_id, strict=True, announce=False)
                    except Exception as exc:
                        logger.error(
                            "cannot register %s %r from code: %s", kind, object_id, exc, extra={"os": self.name}
                        )
                        first_error = first_error or exc
            self._started = True
            for interface in list(self._interfaces.values()):
                self._start_interface(interface)
        if strict and first_error is not None:
            raise first_error

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            for name, interface in list(self._interfaces.items()):
                if name not in self._failed_start:
                    _call(interface, "stop")
            self._failed_start.clear()
            self._started = False

    def serve(self, host: str = "127.0.0.1", port: int | None = None, server: str = "daphne") -> None:
        """Start, then serve HTTP and websockets (blocking), like ``manage.py asteros serve``."""
        from django.core.management import call_command

        self.start()
        call_command("asteros", "serve", host=host, port=port or settings.ASTEROS.port, server=server)

    # --- internals

    def _start_interface(self, interface: Interface) -> None:
        if not _call(interface, "start", self):
            self._failed_start.add(interface.name)
            return
        self._failed_start.discard(interface.name)
        for kind, rows in self._rows.items():
            for object_id, row in rows.items():
                _call(interface, CALLBACKS[kind], object_id, row)

    def _register(self, kind: str, object_id: str, spec: Any) -> None:
        with self._lock:
            if object_id in self._registered[kind]:
                raise AlreadyRegistered(f"{kind.capitalize()} {object_id!r} is already registered with {self.name}.")
            self._registered[kind][object_id] = spec
            if self._started:
                self._persist(kind, object_id, strict=True)

    def _persist(self, kind: str, object_id: str, *, strict: bool, announce: bool = True) -> Any:
        spec = self._registered[kind][object_id]
        if kind == AGENT_KIND:
            row = self.cosmos.upsert(object_id, source=Source.CODE, **spec)
        elif kind == STAR_KIND:
            row = spec.save(object_id)
        else:
            row = upsert_workflow(object_id, spec)
        self._rows[kind][object_id] = row
        if announce:
            for interface in list(self._interfaces.values()):
                if interface.name not in self._failed_start:
                    _call(interface, CALLBACKS[kind], object_id, row)
        return row


def _call(interface: Interface, method: str, *args: Any) -> bool:
    """Call one interface callback; a failure is logged with the interface's name, not raised."""
    try:
        getattr(interface, method)(*args)
    except Exception:
        logger.exception(
            "interface %r failed in %s", interface.name, method, extra={"interface": interface.name, "callback": method}
        )
        return False
    return True


def resolve_interface(interface: Interface | type | str) -> Interface:
    if isinstance(interface, str):
        try:
            interface = import_string(interface)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Cannot import the interface {interface!r} (ASTEROS_INTERFACES): {exc}"
            ) from None
    if isinstance(interface, type):
        interface = interface()
    if not isinstance(interface, Interface):
        raise ImproperlyConfigured(f"{interface!r} is not an interfaces.base.Interface.")
    return interface


def _check_id(object_id: str, what: str) -> None:
    try:
        slug_id_validator(object_id)
    except ValidationError:
        raise Invalid(f"{object_id!r} is not a valid {what} id: {slug_id_validator.message}") from None


# --- turning what code hands us into fields


def _fields_of(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return {name: data[name] for name in names if name in data}
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}


def agent_fields(agent: Any) -> dict[str, Any]:
    if isinstance(agent, Agent):
        fields = {name: getattr(agent, name) for name in AGENT_FIELDS if name != "template"}
        if agent.template_id:
            fields["template"] = agent.template_id
        return {key: value for key, value in fields.items() if value not in ("", None)} | {"enabled": agent.enabled}
    fields = _fields_of(agent, AGENT_FIELDS)
    if hasattr(agent, "api_key_ref"):
        # An AgentSpec holds the key itself (``api_key``, for the runtime alone) and its reference
        # (``api_key_ref``): a row stores only the reference. No base URL is "", not None.
        fields.pop("api_key", None)
        if agent.api_key_ref:
            fields["api_key"] = agent.api_key_ref
    if fields.get("base_url") is None:
        fields.pop("base_url", None)
    for name in ("parameters", "approvals"):  # an AgentSpec holds read-only mappings
        if name in fields and isinstance(fields[name], Mapping):
            fields[name] = dict(fields[name])
    if "tools" in fields and not isinstance(fields["tools"], list):
        fields["tools"] = list(fields["tools"])
    return fields


def _member(entry: Any) -> dict[str, Any]:
    """A member as ``(name, agent_id[, role])``, a mapping, or an object with those fields."""
    if isinstance(entry, list | tuple):
        name, agent, *rest = entry
        return {"name": name, "agent_id": agent, "role": rest[0] if rest else "worker"}
    data = _fields_of(entry, MEMBER_FIELDS)
    agent = data.pop("agent", None) or data.get("agent_id")
    data["agent_id"] = agent.id if isinstance(agent, Agent) else agent
    data.setdefault("name", data["agent_id"])
    return data


def as_stars(stars_id: str, stars: Any, cosmos: Cosmos) -> Any:
    """A ``stars.stars.Stars`` for what code registered (a Stars, a Star, a mapping, an object)."""
    from stars.models import Star
    from stars.stars import Stars

    if isinstance(stars, Stars):
        return stars
    if isinstance(stars, Star):
        fields = {name: getattr(stars, name) for name in STAR_FIELDS}
    else:
        fields = _fields_of(stars, STAR_FIELDS)
    fields = {key: value for key, value in fields.items() if key in STAR_FIELDS and value not in (None, "")}
    team = Stars(cosmos, fields.pop("name", "") or stars_id, id=stars_id, **fields)
    members = stars.get("members", ()) if isinstance(stars, Mapping) else getattr(stars, "members", None) or ()
    for entry in members() if callable(members) else members:
        member = _member(entry)
        team.add_member(
            member["name"],
            member["agent_id"],
            member.get("role") or "worker",
            description=member.get("description") or "",
        )
    return team


def workflow_fields(workflow: Any) -> dict[str, Any]:
    from workflows.models import Workflow

    if isinstance(workflow, Workflow):
        return {name: getattr(workflow, name) for name in WORKFLOW_FIELDS}
    fields = _fields_of(workflow, (*WORKFLOW_FIELDS, "steps"))
    if "definition" not in fields and "steps" in fields:
        fields["definition"] = {"steps": list(fields["steps"])}
    fields.pop("steps", None)
    return {key: value for key, value in fields.items() if key in WORKFLOW_FIELDS}


# --- the process's instances


def configured_interfaces() -> list[str]:
    """A2A and AG-UI (unless switched off), then those listed in ASTEROS_INTERFACES."""
    options = settings.ASTEROS
    defaults = [
        path
        for path, enabled in (
            ("interfaces.a2a.A2AInterface", options.enable_a2a),
            ("interfaces.agui.AGUIInterface", options.enable_agui),
        )
        if enabled and path not in options.interfaces
    ]
    return [*defaults, *options.interfaces]


def default_os() -> AsterOS:
    """The process's own AsterOS, with the interfaces of ASTEROS_INTERFACES."""
    global _default
    with _instances_lock:
        existing = _default
    if existing is not None:
        return existing
    created = AsterOS(name=settings.ASTEROS.name, interfaces=configured_interfaces())
    with _instances_lock:
        if _default is None:
            _default = created
        return _default


def instances() -> list[AsterOS]:
    with _instances_lock:
        return list(_instances)


def start_all(*, strict: bool = True) -> list[AsterOS]:
    """Start every AsterOS of the process: the default one and those the apps' ``asteros``
    modules made (imported by ``asteros_site.apps.autodiscover`` when Django set up)."""
    from cosmos.services.revisions import authored_by

    default_os()
    started = []
    for os_ in instances():
        try:
            with authored_by("code"):  # revisions of what the apps register
                os_.start(strict=strict)
        except Exception:
            if strict:
                raise
            logger.exception("starting %r failed", os_)
        started.append(os_)
    return started
