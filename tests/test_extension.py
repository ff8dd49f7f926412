"""The extension contract: two ways in, per-app state, settings read and validated once."""

from __future__ import annotations

import warnings

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_sentry_api
from flask_sentry_api import ConfigurationError
from flask_sentry_api import SentryAPI
from flask_sentry_api import SentryAPIConfigWarning
from flask_sentry_api import SQLAlchemyStorage
from flask_sentry_api import get_state
from flask_sentry_api.config import DEFAULTS
from flask_sentry_api.memory_storage import MemoryStorage
from flask_sentry_api.storage import ROLE_API
from flask_sentry_api.storage import ProjectKey
from flask_sentry_api.tokens import hash_token
from flask_sentry_api.tokens import new_token
from tests.helpers import DATABASE_URL
from tests.helpers import basic_auth
from tests.helpers import close_after_test


def bare_app(**config: object) -> Flask:
    app = Flask("host")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=DATABASE_URL, **config)
    return app


def with_db(app: Flask) -> SQLAlchemy:
    db = SQLAlchemy(app)
    close_after_test(app)
    return db


def test_init_app_registers_state_blueprint_and_cli() -> None:
    app = bare_app()
    with_db(app)
    SentryAPI(app)
    state = get_state(app)
    assert isinstance(state.storage, SQLAlchemyStorage)
    assert "sentry_api" in app.blueprints
    assert "sentry-api" in app.cli.commands
    adapter = app.url_map.bind("localhost")
    assert adapter.match("/api/0/projects/7/", "GET") == (
        "sentry_api.project_details",
        {"project_id": 7},
    )
    assert adapter.match("/api/7/store/", "POST") == ("sentry_api_ingest.store", {"project_id": 7})
    assert adapter.match("/api/7/envelope/", "POST") == (
        "sentry_api_ingest.envelope",
        {"project_id": 7},
    )


def test_register_blueprint_gives_the_same_api() -> None:
    via_extension, via_blueprint = bare_app(), bare_app()
    with_db(via_extension)
    with_db(via_blueprint)
    SentryAPI(via_extension)
    via_blueprint.register_blueprint(flask_sentry_api.blueprint)

    def routes(app: Flask) -> set[tuple[str, str]]:
        return {(rule.rule, rule.endpoint) for rule in app.url_map.iter_rules()}

    assert routes(via_extension) == routes(via_blueprint)
    assert isinstance(get_state(via_blueprint).storage, SQLAlchemyStorage)
    for app in (via_extension, via_blueprint):
        response = app.test_client().get("/api/0/")
        assert response.status_code == 200
        assert response.get_json() == {"version": "0"}


def test_one_extension_serves_several_apps() -> None:
    extension = SentryAPI()
    first, second = bare_app(SENTRY_API_MAX_PAGE_SIZE=10), bare_app()
    for app in (first, second):
        with_db(app)
        extension.init_app(app)
    assert get_state(first).settings.max_page_size == 10
    assert get_state(second).settings.max_page_size == 100
    assert get_state(first).storage is not get_state(second).storage
    assert not hasattr(extension, "app")


def test_double_registration_is_a_clear_error() -> None:
    app = bare_app()
    with_db(app)
    extension = SentryAPI(app)
    with pytest.raises(RuntimeError, match="already registered"):
        extension.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        SentryAPI(app)


def test_defaults_are_written_back_to_config() -> None:
    app = bare_app()
    with_db(app)
    SentryAPI(app)
    for key, default in DEFAULTS.items():
        assert app.config[key] == default


def test_url_prefixes_are_configurable() -> None:
    app = bare_app(SENTRY_API_URL_PREFIX="/sentry/api/0", SENTRY_API_INGEST_URL_PREFIX="/ingest")
    with_db(app)
    SentryAPI(app)
    client = app.test_client()
    assert client.get("/sentry/api/0/").get_json() == {"version": "0"}
    assert client.get("/api/0/").status_code == 404
    adapter = app.url_map.bind("localhost")
    assert adapter.match("/ingest/3/store/", "POST") == (
        "sentry_api_ingest.store",
        {"project_id": 3},
    )


def test_register_blueprint_with_its_own_prefix() -> None:
    app = bare_app()
    with_db(app)
    app.register_blueprint(flask_sentry_api.blueprint, url_prefix="/v0")
    assert app.test_client().get("/v0/").get_json() == {"version": "0"}


def test_missing_flask_sqlalchemy_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="SENTRY_API_STORAGE"):
        SentryAPI(bare_app())


#: At least one bad value for every setting (test_every_setting_is_validated checks that).
BAD_SETTINGS: list[tuple[str, object]] = [
    ("SENTRY_API_MAX_PAGE_SIZE", 0),
    ("SENTRY_API_MAX_PAGE_SIZE", "100"),
    ("SENTRY_API_DEFAULT_PAGE_SIZE", 500),
    ("SENTRY_API_MAX_BODY_SIZE", -1),
    ("SENTRY_API_MAX_BODY_SIZE", True),
    ("SENTRY_API_MAX_EVENT_SIZE", 0),
    ("SENTRY_API_MAX_INFLATED_SIZE", "20MB"),
    ("SENTRY_API_URL_PREFIX", "api/0"),
    ("SENTRY_API_URL_PREFIX", "/api/0/"),
    ("SENTRY_API_URL_PREFIX", "/"),
    ("SENTRY_API_URL_PREFIX", "/api//0"),
    ("SENTRY_API_URL_PREFIX", "/api/<version>"),
    ("SENTRY_API_URL_PREFIX", "/my api"),
    ("SENTRY_API_INGEST_URL_PREFIX", 7),
    ("SENTRY_API_PERMALINK_TEMPLATE", "{base_url}/{nope}/"),
    ("SENTRY_API_PERMALINK_TEMPLATE", "/relative/{group_id}/"),
    ("SENTRY_API_PERMALINK_TEMPLATE", "{base_url/"),
    ("SENTRY_API_AUTH_REALM", 'a"b'),
    ("SENTRY_API_AUTH_REALM", ""),
    ("SENTRY_API_ORGANIZATION", "Acme"),
    ("SENTRY_API_TABLE_PREFIX", "drop table;"),
    ("SENTRY_API_STORAGE", "no_such_module:storage"),
    ("SENTRY_API_STORAGE", "not an import string"),
    ("SENTRY_API_STORAGE", object()),
    # A class that needs arguments, a class that is no storage, a factory giving a class.
    ("SENTRY_API_STORAGE", "flask_sentry_api:SQLAlchemyStorage"),
    ("SENTRY_API_STORAGE", "collections:OrderedDict"),
    ("SENTRY_API_STORAGE", "tests.test_extension:class_factory"),
    ("SENTRY_API_KEY_LOOKUP", "flask_sentry_api:no_such_name"),
    ("SENTRY_API_KEY_LOOKUP", 42),
    ("SENTRY_API_KEY_LOOKUP", "flask_sentry_api.memory_storage:MemoryStorage"),
    ("SENTRY_API_TOKEN_LOOKUP", "not an import"),
    ("SENTRY_API_TOKEN_LOOKUP", "flask_sentry_api:AuthToken"),
    ("SENTRY_API_MAX_BULK_IDS", 0),
    ("SENTRY_API_STATS_MAX_BUCKETS", 1.5),
    ("SENTRY_API_INGEST_RATE_LIMIT", "often"),
    ("SENTRY_API_RATE_LIMIT", "10/0"),
    ("SENTRY_API_RATE_LIMIT", 1.5),
    ("SENTRY_API_RATE_LIMIT_STORAGE_URI", "nowhere://"),
    ("SENTRY_API_RATE_LIMIT_STORAGE_URI", ""),
    ("SENTRY_API_RATE_LIMIT_STRATEGY", "leaky-bucket"),
    ("SENTRY_API_CREDENTIAL_CACHE_TTL", -1),
    ("SENTRY_API_CREDENTIAL_CACHE_TTL", "5"),
    ("SENTRY_API_INGEST_MODE", "queue"),
    ("SENTRY_API_CELERY_APP", "no_such_module:celery"),
    ("SENTRY_API_CELERY_APP", "collections:OrderedDict"),
    ("SENTRY_API_CELERY_BROKER_URL", ""),
    ("SENTRY_API_CELERY_QUEUE", ""),
    ("SENTRY_API_CELERY_PUBLISH_TIMEOUT", 0),
    ("SENTRY_API_CELERY_RETRY_AFTER", 0),
    ("SENTRY_API_CELERY_BATCH_SIZE", 0),
    ("SENTRY_API_CELERY_OPTIONS", ["broker_url"]),
]


def test_every_setting_is_validated() -> None:
    assert {key for key, _ in BAD_SETTINGS} == set(DEFAULTS)


@pytest.mark.parametrize("way_in", ["init_app", "register_blueprint"])
@pytest.mark.parametrize(("key", "value"), BAD_SETTINGS)
def test_bad_settings_fail_at_start_up_naming_the_key(key: str, value: object, way_in: str) -> None:
    app = bare_app(**{key: value})
    with_db(app)
    with pytest.raises(ConfigurationError, match=key):
        if way_in == "init_app":
            SentryAPI(app)
        else:
            app.register_blueprint(flask_sentry_api.blueprint)


def test_storage_and_key_lookup_from_import_strings() -> None:
    app = bare_app(
        SENTRY_API_STORAGE="tests.test_extension:storage_factory",
        SENTRY_API_KEY_LOOKUP="tests.test_extension:lookup_nothing",
    )
    SentryAPI(app)
    state = get_state(app)
    assert state.storage is FACTORY_STORAGE
    assert state.key_lookup is lookup_nothing


def test_constructor_arguments_win_over_config() -> None:
    other = new_memory_storage()
    app = bare_app(SENTRY_API_STORAGE="tests.test_extension:storage_factory")
    SentryAPI(app, storage=other, key_lookup=lookup_nothing)
    assert get_state(app).storage is other
    assert get_state(app).key_lookup is lookup_nothing


def test_injected_key_lookup_is_what_authenticates() -> None:
    host_keys: dict[str, ProjectKey] = {}
    app = bare_app()
    with_db(app)
    SentryAPI(app, key_lookup=host_keys.get)
    with app.app_context():
        storage = get_state(app).storage
        storage.init_schema()
        project = storage.create_project("Web")
        stored = storage.create_key(project.id, ROLE_API)
    client = app.test_client()
    url = f"/api/0/projects/{project.id}/"
    # The storage knows the key, but the host's lookup decides: unknown to it, so 401.
    assert client.get(url, headers=basic_auth(stored)).status_code == 401
    host_keys[stored.public_key] = stored
    assert client.get(url, headers=basic_auth(stored)).status_code == 200


# -- objects the import-string tests resolve ----------------------------------------------


def lookup_nothing(public_key: str) -> None:
    return None


def new_memory_storage() -> object:
    from flask_sentry_api.memory_storage import MemoryStorage

    return MemoryStorage()


FACTORY_STORAGE = new_memory_storage()


def storage_factory(app: Flask) -> object:
    assert isinstance(app, Flask)
    return FACTORY_STORAGE


def class_factory(app: Flask) -> object:
    from flask_sentry_api.memory_storage import MemoryStorage

    return MemoryStorage  # the class, not an instance: no storage


# -- the organization slug and the token lookup (SPEC §10) ----------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Acme",
        "acme corp",
        "acme/eu",
        "acme?",
        "ünï",
        "-acme",
        "acme-",
        "x" * 51,
        7,
        None,
        b"acme",
    ],
)
def test_bad_organization_slug_fails_at_start_up(value: object) -> None:
    app = bare_app(SENTRY_API_ORGANIZATION=value)
    with_db(app)
    with pytest.raises(ConfigurationError, match="SENTRY_API_ORGANIZATION"):
        SentryAPI(app)
    assert "sentry_api" not in app.blueprints


@pytest.mark.parametrize("value", ["acme", "my-org_2", "7", "x" * 50])
def test_organization_slug_is_configurable(value: str) -> None:
    app = bare_app(SENTRY_API_ORGANIZATION=value)
    with_db(app)
    SentryAPI(app)
    assert get_state(app).settings.organization == value
    assert app.config["SENTRY_API_ORGANIZATION"] == value
    adapter = app.url_map.bind("localhost")
    endpoint, args = adapter.match(f"/api/0/organizations/{value}/issues/", "GET")
    assert endpoint == "sentry_api.organization_issues"
    assert args == {"organization_slug": value}


def test_organization_slug_defaults_to_sentry() -> None:
    app = bare_app()
    with_db(app)
    SentryAPI(app)
    assert get_state(app).settings.organization == "sentry"
    assert app.config["SENTRY_API_ORGANIZATION"] == "sentry"


@pytest.mark.parametrize(
    "value", ["no_such_module:lookup", "flask_sentry_api:no_such_name", "not an import", 42]
)
def test_bad_token_lookup_fails_at_start_up(value: object) -> None:
    app = bare_app(SENTRY_API_TOKEN_LOOKUP=value)
    with_db(app)
    with pytest.raises(ConfigurationError, match="SENTRY_API_TOKEN_LOOKUP"):
        SentryAPI(app)


def test_bad_token_lookup_argument_fails_at_start_up() -> None:
    app = bare_app()
    with_db(app)
    with pytest.raises(ConfigurationError, match="token_lookup"):
        SentryAPI(app, token_lookup=42)


def test_token_lookup_from_config_and_argument() -> None:
    app = bare_app(SENTRY_API_TOKEN_LOOKUP="tests.test_extension:lookup_nothing")
    with_db(app)
    SentryAPI(app)
    assert get_state(app).token_lookup is lookup_nothing

    def host_lookup(token: str) -> None:
        return None

    app = bare_app(SENTRY_API_TOKEN_LOOKUP="tests.test_extension:lookup_nothing")
    with_db(app)
    SentryAPI(app, token_lookup=host_lookup)
    assert get_state(app).token_lookup is host_lookup


def test_default_token_lookup_asks_the_storage() -> None:
    app = bare_app()
    with_db(app)
    SentryAPI(app)
    with app.app_context():
        storage = get_state(app).storage
        storage.init_schema()
        project = storage.create_project("Web")
        token = new_token()
        storage.create_token(project.id, hash_token(token), ("event:read",))
        found = get_state(app).token_lookup(token)
        assert found is not None and found.project_id == project.id
        assert found.scopes == ("event:read",)
        assert get_state(app).token_lookup(new_token()) is None
        assert get_state(app).token_lookup(hash_token(token)) is None  # the hash is no token


# -- storages given as a class, unknown keys (issue 13) -------------------------------------

MEMORY_STORAGE_CLASS = "flask_sentry_api.memory_storage:MemoryStorage"


def authenticated_get(app: Flask, path: str) -> tuple[int, object]:
    """GET ``path`` (under the API prefix) with a new project's API key: status and body."""
    with app.app_context():
        storage = get_state(app).storage
        project = storage.create_project("Web")
        key = storage.create_key(project.id, ROLE_API)
    prefix = get_state(app).settings.url_prefix
    response = app.test_client().get(
        f"{prefix}{path.format(project_id=project.id)}", headers=basic_auth(key)
    )
    return response.status_code, response.get_json()


@pytest.mark.parametrize("way_in", ["config", "argument", "register_blueprint"])
def test_storage_given_as_a_class_is_instantiated(way_in: str) -> None:
    if way_in == "argument":
        app = bare_app()
        SentryAPI(app, storage=MemoryStorage)
    else:
        app = bare_app(SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS)
        if way_in == "config":
            SentryAPI(app)
        else:
            app.register_blueprint(flask_sentry_api.blueprint)
    assert isinstance(get_state(app).storage, MemoryStorage)
    # Was a 500 on every authenticated request: the class's unbound get_key.
    status, body = authenticated_get(app, "/projects/{project_id}/")
    assert status == 200
    assert isinstance(body, dict) and body["name"] == "Web"


def test_storage_class_needing_arguments_says_what_to_give() -> None:
    app = bare_app(SENTRY_API_STORAGE="flask_sentry_api:SQLAlchemyStorage")
    with_db(app)
    with pytest.raises(ConfigurationError, match="SENTRY_API_STORAGE.*without arguments"):
        SentryAPI(app)
    assert "sentry_api" not in app.blueprints


@pytest.mark.parametrize("argument", ["key_lookup", "token_lookup"])
def test_lookup_given_as_a_class_fails_at_start_up(argument: str) -> None:
    app = bare_app(SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS)
    with pytest.raises(ConfigurationError, match=f"{argument}.*not a class"):
        SentryAPI(app, **{argument: ProjectKey})


@pytest.mark.parametrize("way_in", ["init_app", "register_blueprint"])
def test_misspelt_key_is_warned_about_with_the_likely_one(way_in: str) -> None:
    app = bare_app(SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS, SENTRY_API_MAX_PAGESIZE=10)
    with pytest.warns(SentryAPIConfigWarning) as caught:
        if way_in == "init_app":
            SentryAPI(app)
        else:
            app.register_blueprint(flask_sentry_api.blueprint)
    assert [str(warning.message) for warning in caught] == [
        "SENTRY_API_MAX_PAGESIZE is not a flask-sentry-api setting and is ignored;"
        " did you mean SENTRY_API_MAX_PAGE_SIZE?"
    ]
    assert issubclass(SentryAPIConfigWarning, UserWarning)
    # Ignored, as it says: the real setting keeps its default.
    assert get_state(app).settings.max_page_size == 100


def test_unknown_key_without_a_close_one_is_warned_about_plainly() -> None:
    app = bare_app(SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS, SENTRY_API_COLOUR_SCHEME="dark")
    with pytest.warns(SentryAPIConfigWarning, match="SENTRY_API_COLOUR_SCHEME") as caught:
        SentryAPI(app)
    assert len(caught) == 1 and "did you mean" not in str(caught[0].message)


def test_known_and_foreign_keys_give_no_warning() -> None:
    app = bare_app(
        SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS,
        SENTRY_API_MAX_PAGE_SIZE=50,
        SENTRY_DSN="https://public@example.com/1",
        API_PREFIX="/v1",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SentryAPI(app)


# -- the API prefix on both ways in (issue 13) ----------------------------------------------


def openapi_paths_at_default_prefix() -> int:
    app = bare_app(SENTRY_API_STORAGE=MEMORY_STORAGE_CLASS)
    SentryAPI(app)
    document = app.test_client().get("/api/0/openapi.json").get_json()
    assert document["servers"] == [{"url": "/api/0"}]
    return len(document["paths"])


@pytest.mark.parametrize(
    ("way_in", "setting", "url_prefix", "expected"),
    [
        ("init_app", "/sentry/api/0", None, "/sentry/api/0"),
        ("register_blueprint", None, None, "/api/0"),
        ("register_blueprint", "/sentry/api/0", None, "/sentry/api/0"),
        ("register_blueprint", None, "/x", "/x"),
        # An explicit url_prefix wins over the setting.
        ("register_blueprint", "/sentry/api/0", "/x", "/x"),
        ("register_blueprint", None, "/tools/sentry/", "/tools/sentry"),
    ],
)
def test_api_prefix_is_honoured_on_both_ways_in(
    way_in: str, setting: str | None, url_prefix: str | None, expected: str
) -> None:
    config: dict[str, object] = {"SENTRY_API_STORAGE": MEMORY_STORAGE_CLASS}
    if setting is not None:
        config["SENTRY_API_URL_PREFIX"] = setting
    app = bare_app(**config)
    if way_in == "init_app":
        SentryAPI(app)
    elif url_prefix is None:
        app.register_blueprint(flask_sentry_api.blueprint)
    else:
        app.register_blueprint(flask_sentry_api.blueprint, url_prefix=url_prefix)

    assert get_state(app).settings.url_prefix == expected
    assert app.config["SENTRY_API_URL_PREFIX"] == expected
    status, body = authenticated_get(app, "/projects/{project_id}/")
    assert status == 200
    assert isinstance(body, dict) and body["name"] == "Web"
    client = app.test_client()
    for other in {"/api/0", "/sentry/api/0", "/x"} - {expected}:
        assert client.get(f"{other}/").status_code == 404
    document = client.get(f"{expected}/openapi.json").get_json()
    assert document["servers"] == [{"url": expected}]
    assert len(document["paths"]) == openapi_paths_at_default_prefix() > 20
    assert "/projects/{project_id}/" in document["paths"]
