"""The identity map, in memory for one request: anonymousId / userId -> email.

Rules (the service loads the rows a request touches, applies them, saves what changed):

- A message with an email (traits.email, context.traits.email, a track's properties.email)
  sets it on its userId, or on its anonymousId when it has no userId.
- A message with both ids links the anonymousId to the userId (the anonymous id follows
  the user it was last seen with). A user without an email inherits the anonymous id's.
- ``alias`` links previousId (an anonymous or a user id) to userId; userId inherits
  previousId's email when it has none ("merges previousId into userId").
- The email of an id is the last email along its chain of links (the most canonical one):
  a user's email wins over the email its anonymous id had before.
"""

from __future__ import annotations

from dataclasses import dataclass

from signup_sync.tracking.messages import Parsed

Key = tuple[str, str]  # ("anon" | "user", id)
MAX_HOPS = 8  # link chains are short; the cap also stops a cycle made by crossed aliases


@dataclass(slots=True)
class Node:
    email: str | None = None
    linked_user: str | None = None
    dirty: bool = False


class IdentityGraph:
    def __init__(self) -> None:
        self.nodes: dict[Key, Node] = {}
        self.loaded: set[Key] = set()  # looked up in the database (found or not)
        self.changed: set[Key] = set()

    def add_loaded(self, key: Key, email: str | None, linked_user: str | None) -> None:
        self.nodes.setdefault(key, Node(email=email, linked_user=linked_user))

    def to_load(self, keys: set[Key]) -> list[Key]:
        return sorted(k for k in keys if k not in self.loaded)

    def link_targets(self) -> set[Key]:
        return {("user", n.linked_user) for n in self.nodes.values() if n.linked_user}

    def chain(self, key: Key) -> list[Key]:
        keys: list[Key] = []
        current: Key | None = key
        while current is not None and current not in keys and len(keys) < MAX_HOPS:
            keys.append(current)
            node = self.nodes.get(current)
            current = ("user", node.linked_user) if node and node.linked_user else None
        return keys

    def email_of(self, key: Key) -> str | None:
        emails = [n.email for k in self.chain(key) if (n := self.nodes.get(k)) and n.email]
        return emails[-1] if emails else None

    def resolve(self, anonymous_id: str | None, user_id: str | None) -> str | None:
        return (self.email_of(("user", user_id)) if user_id else None) or (
            self.email_of(("anon", anonymous_id)) if anonymous_id else None
        )

    def _update(
        self, key: Key, *, email: str | None = None, linked_user: str | None = None
    ) -> None:
        node = self.nodes.setdefault(key, Node())
        if email is not None and node.email != email:
            node.email = email
            node.dirty = True
        if (
            linked_user is not None
            and node.linked_user != linked_user
            and key
            != (
                "user",
                linked_user,
            )
        ):
            node.linked_user = linked_user
            node.dirty = True
        if node.dirty:
            self.changed.add(key)

    def _link(self, key: Key, user_id: str) -> None:
        inherited = self.email_of(key)
        self._update(key, linked_user=user_id)
        if inherited and not self.email_of(("user", user_id)):
            self._update(("user", user_id), email=inherited)

    def observe(self, message: Parsed) -> None:
        """Apply one message's identity facts (see the module rules)."""
        if message.type == "alias":
            previous, user_id = message.previous_id, message.user_id
            if not previous or not user_id or previous == user_id:
                return
            known = [k for k in (("anon", previous), ("user", previous)) if k in self.nodes]
            for key in known or [("anon", previous), ("user", previous)]:
                self._link(key, user_id)
            return
        if message.user_id and message.email:
            self._update(("user", message.user_id), email=message.email)
        if message.anonymous_id:
            anon: Key = ("anon", message.anonymous_id)
            if message.user_id:
                self._link(anon, message.user_id)
            elif message.email:
                self._update(anon, email=message.email)

    def dirty_nodes(self) -> list[tuple[Key, Node]]:
        return sorted((k, n) for k, n in self.nodes.items() if n.dirty)
