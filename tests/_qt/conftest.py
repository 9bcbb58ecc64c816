"""Fixtures of the widget tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def errors():
    """The error notifications shown while the test runs (napari's own manager)."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    seen: list[str] = []

    def record(notification):
        if notification.severity == NotificationSeverity.ERROR:
            seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)
