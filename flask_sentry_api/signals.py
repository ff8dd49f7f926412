"""Blinker signals a host connects to, to alert on new and regressed issues (as
:mod:`flask.signals` and Flask-Login's signals do).

Every signal is sent with the Flask app as its sender (``current_app._get_current_object()``,
as Flask sends its own, so ``connect_via(app)`` narrows to one app), inside the request that
caused it, and only after the storage has committed the change: a request that fails or rolls
back sends nothing. A receiver is called with the sender and keyword arguments, and should
accept ``**extra`` so that it keeps working when arguments are added::

    from flask_sentry_api import issue_created

    @issue_created.connect_via(app)
    def alert(sender, project, group, event, permalink, **extra):
        post_to_slack(f"New issue in {project.slug}: {group.title} {permalink}")

Unlike Flask's signals, a receiver that raises does not fail the request: the change is
committed already (an SDK told "error" would resend an event that is stored), so the exception
is logged on the ``flask_sentry_api`` logger and the next receiver is called. Receivers run
synchronously in the request: anything slow (SMTP, a webhook) belongs in a task queue or a
thread the host owns.

When nothing is connected, sending costs one truthiness check (``signal.receivers``). The
module needs only blinker (Flask's own dependency), so worker code can import it without Flask.
"""

from __future__ import annotations

import logging
import typing as t

from blinker import NamedSignal
from blinker import Namespace

logger = logging.getLogger("flask_sentry_api")

_signals = Namespace()

#: An SDK's event opened a new issue (the first event of its group). Keyword arguments:
#: ``project`` (:class:`~flask_sentry_api.storage.Project`), ``group`` (the
#: :class:`~flask_sentry_api.storage.Group` as stored: ``title``, ``culprit``, ``level``,
#: ``id``...), ``event`` (the stored :class:`~flask_sentry_api.storage.Event`) and
#: ``permalink`` (the group's ``permalink`` as the API serialises it; None when only the
#: ingestion blueprint is registered and ``SENTRY_API_PERMALINK_TEMPLATE`` is unset).
issue_created = _signals.signal("issue-created")

#: An SDK's event arrived for a resolved issue, which is reopened (``unresolved``, as Sentry
#: does). The same keyword arguments as :data:`issue_created`; ``group`` is the reopened group.
issue_regressed = _signals.signal("issue-regressed")

#: Issues were resolved through the API (``PUT`` of one group, or a bulk ``PUT`` with
#: ``{"status": "resolved"}`` on a project's or the organization's issue list). Sent once per
#: request that changed at least one group from not resolved to resolved. Keyword arguments:
#: ``project``; ``count``, how many groups this request resolved (groups resolved already are
#: not counted); ``groups``, a tuple of those groups as stored when the request named them by
#: ``id`` (one group, or at most ``SENTRY_API_MAX_BULK_IDS``), empty for a bulk resolve chosen
#: by filters alone, which may reach a whole project and is never loaded into memory;
#: ``permalinks``, the permalink of each of ``groups``, in the same order.
issue_resolved = _signals.signal("issue-resolved")

#: An SDK's event was stored (not sent again for an event id stored already, an SDK retry).
#: The same keyword arguments as :data:`issue_created`; sent before :data:`issue_created` or
#: :data:`issue_regressed` for the same event.
event_stored = _signals.signal("event-stored")


def send(signal: NamedSignal, sender: t.Any, /, **kwargs: t.Any) -> None:
    """Send ``signal`` from ``sender`` (the app) to each receiver in turn, logging, not
    raising, what a receiver raises: the change it reports is committed, and the request
    succeeds. Callers check ``signal.receivers`` first when building the arguments costs."""
    for receiver in signal.receivers_for(sender):
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception("a receiver of the %s signal failed: %r", signal.name, receiver)
