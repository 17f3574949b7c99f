"""deploy/rabbitmq/definitions.json's users, imported into a test's own vhost on the real broker.

The very permissions of the file (not a second copy): its users are renamed (unique, so tests
and the machine's own users never meet), its vhost "/" becomes the test's vhost, and the result
is loaded with `rabbitmqctl import_definitions`, as the broker loads the file at boot. The
passwords are compose.yaml's dev passwords, so a login also checks the file's hashes.
"""

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from harness.broker import rabbitmqctl

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
COMPOSE = ROOT / "compose.yaml"
ROLES = ("jobcast-gateway", "jobcast-worker", "jobcast-subscriber")


def definitions() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DEFINITIONS.read_text())
    return loaded


def compose_amqp_urls() -> dict[str, str]:
    """Each compose service's JOBCAST_AMQP_URL (the dev passwords are there, in clear)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        name: service["environment"]["JOBCAST_AMQP_URL"]
        for name, service in services.items()
        if "JOBCAST_AMQP_URL" in (service.get("environment") or {})
    }


def dev_passwords() -> dict[str, str]:
    """RabbitMQ user -> its clear dev password, as compose.yaml's processes log in."""
    found: dict[str, str] = {}
    for url in compose_amqp_urls().values():
        parts = urlsplit(url)
        assert parts.username, url
        assert parts.password, url
        found[parts.username] = parts.password
    return found


@dataclass
class BrokerUsers:
    """The definitions' roles as users of `vhost`: `url(role)` logs in as one."""

    base_url: str
    vhost: str
    names: dict[str, str]
    passwords: dict[str, str]

    def url(self, role: str) -> str:
        parts = urlsplit(self.base_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        user, password = quote(self.names[role], safe=""), quote(self.passwords[role], safe="")
        return urlunsplit(
            parts._replace(
                netloc=f"{user}:{password}@{host}", path="/" + quote(self.vhost, safe="")
            )
        )


def _import(text: str) -> None:
    # NOTE: a file the rabbitmq user can read (Debian's rabbitmqctl runs as that user, and
    # 3.10's `import_definitions -` does not read stdin); only dev hashes are in it.
    folder = Path(tempfile.mkdtemp(prefix="jobcast-definitions-"))
    try:
        folder.chmod(0o755)
        path = folder / "definitions.json"
        path.write_text(text)
        path.chmod(0o644)
        rabbitmqctl("import_definitions", str(path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def imported_users(base_url: str, vhost: str) -> Iterator[BrokerUsers]:
    """Import the definitions' roles into `vhost` under unique names; delete them after."""
    suffix = uuid.uuid4().hex[:10]
    names = {role: f"{role}-{suffix}" for role in ROLES}
    source = definitions()
    rename = names.get

    def ours(entry: dict[str, Any]) -> bool:
        return entry["user"] in names

    imported = {
        "users": [{**u, "name": names[u["name"]]} for u in source["users"] if u["name"] in names],
        "permissions": [
            {**p, "user": rename(p["user"]), "vhost": vhost}
            for p in source["permissions"]
            if ours(p)
        ],
        "topic_permissions": [
            {**p, "user": rename(p["user"]), "vhost": vhost}
            for p in source["topic_permissions"]
            if ours(p)
        ],
    }
    passwords = dev_passwords()
    # NOTE: compose runs no reply-topic subscriber, so its dev password is nowhere in clear:
    # the test gives it one of its own (the gateway's and worker's logins check the hashes).
    subscriber_password = uuid.uuid4().hex
    try:
        _import(json.dumps(imported))
        rabbitmqctl("change_password", names["jobcast-subscriber"], subscriber_password)
        yield BrokerUsers(
            base_url,
            vhost,
            names,
            {
                "jobcast-gateway": passwords["jobcast-gateway"],
                "jobcast-worker": passwords["jobcast-worker"],
                "jobcast-subscriber": subscriber_password,
            },
        )
    finally:
        for name in names.values():
            with suppress(RuntimeError):
                rabbitmqctl("delete_user", name)
