"""The pytest plugin (``flask_sentry_api.pytest_plugin``) as a host's test suite uses it, and
the README's host test and ``StorageContract`` example, each run as a pytest session of its
own (pytester) in a directory holding a complete host: its app, conftest.py and tests.

``HOST_CONFTEST`` and ``HOST_TESTS`` are the README's "Testing your app" example and
``CONTRACT_EXAMPLE`` its storage contract example, word for word: the README copies them from
here, so the text it shows is the text tested.
"""

from __future__ import annotations

import textwrap

import pytest

# What the hosts import, imported here first: an in-process run forgets the modules it
# imported itself, and importing some twice (SQLAlchemy's dialects) warns. The plugin itself
# is not: pytest could not rewrite its asserts once imported.
import flask_sentry_api.memory_storage  # noqa: F401
import flask_sentry_api.sqlalchemy_storage  # noqa: F401

pytest_plugins = ["pytester"]

#: The host of the README's install section, its configuration overridable by the tests.
SQLALCHEMY_HOST = """
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sentry_api import SentryAPI

db = SQLAlchemy()
sentry_api = SentryAPI()


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///errors.db"
    app.config.update(config or {})
    db.init_app(app)
    sentry_api.init_app(app)
    with app.app_context():
        db.create_all()
    return app
"""

#: A host keeping everything in memory: no Flask-SQLAlchemy at all.
MEMORY_HOST = """
from flask import Flask
from flask_sentry_api import SentryAPI
from flask_sentry_api.memory_storage import MemoryStorage


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(config or {})
    SentryAPI(app, storage=MemoryStorage())
    return app
"""

#: The README's conftest.py.
HOST_CONFTEST = """
import pytest

from myapp import create_app

pytest_plugins = ["flask_sentry_api.pytest_plugin"]


@pytest.fixture
def app():
    # A new app per test; with in-memory SQLite each one starts on an empty database.
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
"""

#: The README's test module.
HOST_TESTS = """
def test_an_error_becomes_an_issue(
    client, sentry_api_project, sentry_api_auth, sentry_api_make_event
):
    event = sentry_api_make_event("Payment failed", level="warning", tags={"shop": "eu"})

    response = client.get(
        f"/api/0/projects/sentry/{sentry_api_project.slug}/issues/", headers=sentry_api_auth
    )

    assert response.status_code == 200
    [issue] = response.json
    assert issue["id"] == event["groupID"]
    assert (issue["title"], issue["level"], issue["count"]) == ("Payment failed", "warning", "1")
    assert {"key": "shop", "value": "eu"} in event["tags"]


def test_the_api_wants_credentials(client, sentry_api_project):
    response = client.get(f"/api/0/projects/sentry/{sentry_api_project.slug}/issues/")

    assert response.status_code == 401


def test_resolving_an_issue(sentry_api_client, sentry_api_make_event):
    first = sentry_api_make_event("Timeout")
    again = sentry_api_make_event("Timeout")
    assert again["groupID"] == first["groupID"]

    response = sentry_api_client.put(
        f"/api/0/issues/{first['groupID']}/", json={"status": "resolved"}
    )

    assert response.json["status"] == "resolved"


def test_projects_and_keys_of_your_own(sentry_api_storage, sentry_api_key, sentry_api_dsn):
    assert [p.slug for p in sentry_api_storage.list_projects()] == ["tests"]
    assert sentry_api_dsn.endswith(f"@localhost/{sentry_api_key.project_id}")
"""

#: The README's storage contract example, with SQLAlchemyStorage as "your" storage.
CONTRACT_EXAMPLE = """
import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_sentry_api import SQLAlchemyStorage as MyStorage  # your storage here
from flask_sentry_api.testing import StorageContract

db = SQLAlchemy()


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    return app


class TestMyStorage(StorageContract):
    @pytest.fixture
    def storage(self, app):  # taking `app`, pytest-flask pushes its context for the test
        store = MyStorage(db)
        store.init_schema()
        yield store
        db.drop_all()
"""

#: Contract tests enough to show the fixture's shape works, each storage fresh (the slugs
#: test fails on one left over); the whole suite runs on both shipped storages in
#: tests/test_storage.py.
SOME_CONTRACT_TESTS = (
    "test_create_project_deduplicates_slugs or test_create_project_explicit_slug_conflict"
    " or test_save_event_creates_group_and_event"
)


def write_host(pytester: pytest.Pytester, app_module: str, **tests: str) -> None:
    """A host's checkout: ``myapp.py``, the README's conftest.py and ``tests`` modules."""
    files = {name: textwrap.dedent(text) for name, text in tests.items()}
    pytester.makepyfile(myapp=app_module, conftest=HOST_CONFTEST, **files)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


@pytest.mark.parametrize("host", [SQLALCHEMY_HOST, MEMORY_HOST], ids=["sqlalchemy", "memory"])
def test_the_readme_host_test_passes(pytester: pytest.Pytester, host: str) -> None:
    write_host(pytester, host, test_errors=HOST_TESTS)
    result = run(pytester)
    result.assert_outcomes(passed=4)


def test_the_plugin_is_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain(sentry_api_project): pass")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'sentry_api_project' not found*"])


def test_each_test_gets_its_own_project_and_key(pytester: pytest.Pytester) -> None:
    write_host(
        pytester,
        SQLALCHEMY_HOST,
        test_fresh="""
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_fresh(n, sentry_api_storage, sentry_api_project, sentry_api_key):
            assert sentry_api_storage.list_projects() == [sentry_api_project]
            assert sentry_api_storage.list_keys(sentry_api_project.id) == [sentry_api_key]
            assert sentry_api_key.role_names == ["store", "api"]
        """,
    )
    run(pytester).assert_outcomes(passed=2)


def test_credentials_and_events(pytester: pytest.Pytester) -> None:
    write_host(
        pytester,
        SQLALCHEMY_HOST,
        test_credentials="""
        def test_a_request_can_send_other_credentials(sentry_api_client, sentry_api_project):
            url = f"/api/0/projects/{sentry_api_project.id}/"
            assert sentry_api_client.get(url).json["slug"] == "tests"
            wrong = sentry_api_client.get(url, headers={"Authorization": "Basic eDp5"})
            assert (wrong.status_code, wrong.json) == (401, {"detail": "Invalid api key"})


        def test_events_take_sdk_fields(sentry_api_make_event, sentry_api_client):
            event = sentry_api_make_event(
                "ignored",
                event_id="a" * 32,
                release="shop@1.2",
                environment="prod",
                exception={"values": [{"type": "KeyError", "value": "'sku'"}]},
            )
            assert event["eventID"] == "a" * 32
            assert (event["release"], event["environment"]) == ("shop@1.2", "prod")
            issue = sentry_api_client.get(f"/api/0/issues/{event['groupID']}/").json
            assert issue["title"] == "KeyError: 'sku'"


        def test_a_refused_event_fails_the_test(app, sentry_api_make_event):
            app.config["MAX_CONTENT_LENGTH"] = 10
            sentry_api_make_event("too big for this host")
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*sentry_api_make_event: POST /api/1/store/ answered 413*"])


def test_the_dsn_follows_the_host_and_ingestion_prefix(pytester: pytest.Pytester) -> None:
    write_host(
        pytester,
        SQLALCHEMY_HOST,
        test_dsn="""
        import pytest

        @pytest.fixture
        def app(app):
            app.config["SERVER_NAME"] = "errors.example.com"
            app.config["PREFERRED_URL_SCHEME"] = "https"
            return app

        def test_dsn(sentry_api_dsn, sentry_api_key):
            assert sentry_api_dsn == f"https://{sentry_api_key.public_key}@errors.example.com/1"
        """,
        test_prefixes="""
        import pytest
        from myapp import create_app

        @pytest.fixture
        def app():
            return create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "SENTRY_API_INGEST_URL_PREFIX": "/errors/api",
                }
            )

        def test_under_a_path(sentry_api_dsn, sentry_api_key):
            assert sentry_api_dsn == f"http://{sentry_api_key.public_key}@localhost/errors/1"
        """,
        test_unreachable="""
        import pytest
        from myapp import create_app

        @pytest.fixture
        def app():
            return create_app(
                {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SENTRY_API_INGEST_URL_PREFIX": "/in"}
            )

        def test_unreachable(sentry_api_dsn):
            pass
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*sentry_api_dsn: SDKs cannot reach ingestion at*/in/1/store/*"])


def test_an_app_without_the_extension_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        conftest="""
        import pytest
        from flask import Flask

        pytest_plugins = ["flask_sentry_api.pytest_plugin"]

        @pytest.fixture
        def app():
            return Flask("bare")
        """,
        test_bare="def test_bare(sentry_api_key): pass",
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the `app` fixture's app does not have the extension*"])


def test_fixtures_push_an_app_context_without_pytest_flask(pytester: pytest.Pytester) -> None:
    # pytest-flask pushes a request context for each test; without it the database storage
    # still gets the app context it needs.
    write_host(
        pytester,
        SQLALCHEMY_HOST,
        test_no_context="""
        from flask import has_app_context

        def test_no_context(sentry_api_key, sentry_api_make_event, sentry_api_client):
            assert not has_app_context()
            event = sentry_api_make_event()
            assert sentry_api_client.get(f"/api/0/issues/{event['groupID']}/").status_code == 200
        """,
    )
    run(pytester, "-p", "no:flask").assert_outcomes(passed=1)


def test_the_readme_contract_example_runs_on_a_database_storage(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_my_storage=CONTRACT_EXAMPLE)
    result = run(pytester, "-k", SOME_CONTRACT_TESTS)
    result.assert_outcomes(passed=3, deselected=result.parseoutcomes()["deselected"])


def test_the_old_contract_example_fails_on_a_database_storage(
    pytester: pytest.Pytester,
) -> None:
    # What the README showed before: a fixture without the app, so without its context.
    pytester.makepyfile(
        test_my_storage="""
        import pytest
        from flask import Flask
        from flask_sqlalchemy import SQLAlchemy

        from flask_sentry_api import SQLAlchemyStorage as MyStorage
        from flask_sentry_api.testing import StorageContract

        APP = Flask(__name__)
        APP.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        SQLAlchemy(APP)


        class TestMyStorage(StorageContract):
            @pytest.fixture
            def storage(self):
                yield MyStorage(APP.extensions["sqlalchemy"])
        """
    )
    result = run(pytester, "-k", "test_create_project_slugify_rules")
    result.assert_outcomes(failed=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*Working outside of application context*"])
