"""The demo's people: two customer organisations, several regions and roles.

One list feeds the local OpenID provider (accounts, groups, claims) and the
pages that show visitors whom to sign in as, so they can never disagree.
The passwords are public on purpose: they only open the local provider.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The group whose members may use the AI assistant (``ai.can_query``).
ANALYSTS_GROUP = "analysts"
#: Organisation membership travels as a group named ``org:<organization id>``.
ORG_GROUP_PREFIX = "org:"

#: Display names of the sandbox's organisations (ids match its data set).
ORGANIZATIONS: dict[str, str] = {"acme": "Acme Corporation", "globex": "Globex Inc."}
REGION_NAMES: dict[str, str] = {"emea": "EMEA", "amer": "Americas", "apac": "Asia-Pacific"}


@dataclass(frozen=True)
class DemoUser:
    """An account at the local provider."""

    username: str
    password: str
    given_name: str
    family_name: str
    organization: str  # an organisation id of the sandbox data set
    region: str  # emea | amer | apac
    analyst: bool  # member of the "analysts" group: may use the assistant

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def email(self) -> str:
        return f"{self.username}@{self.organization}.example"

    @property
    def groups(self) -> list[str]:
        return [ORG_GROUP_PREFIX + self.organization] + ([ANALYSTS_GROUP] if self.analyst else [])

    @property
    def role(self) -> str:
        return "analyst" if self.analyst else "viewer"


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "alice-demo-pass", "Alice", "Martin", "acme", "emea", analyst=True),
    DemoUser("bob", "bob-demo-pass", "Bob", "Smith", "acme", "amer", analyst=False),
    DemoUser("carol", "carol-demo-pass", "Carol", "Nakamura", "acme", "apac", analyst=False),
    DemoUser("dave", "dave-demo-pass", "Dave", "Okafor", "globex", "emea", analyst=False),
    DemoUser("erin", "erin-demo-pass", "Erin", "Lopez", "globex", "amer", analyst=True),
    DemoUser("frank", "frank-demo-pass", "Frank", "Chen", "globex", "apac", analyst=True),
)


def find_user(username: str) -> DemoUser:
    for user in DEMO_USERS:
        if user.username == username:
            return user
    raise KeyError(username)


def users_table() -> str:
    """The console listing printed by ``python -m demo``."""
    lines = [f"  {'username':<8} {'password':<16} {'organisation':<18} {'region':<13} role"]
    for u in DEMO_USERS:
        lines.append(
            f"  {u.username:<8} {u.password:<16} {ORGANIZATIONS[u.organization]:<18} "
            f"{REGION_NAMES[u.region]:<13} {u.role}"
        )
    return "\n".join(lines)
