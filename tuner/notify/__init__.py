"""Notifications: decisions grouped into constructive messages, delivered reliably.

The loop hands every cycle's decisions to :class:`NotificationCenter` (a
:class:`tuner.domain.ports.Notifier`); see ``docs/notifications.md``.
"""

from tuner.notify.center import NotificationCenter, build_notifier
from tuner.notify.settings import NotifySettings, load_settings

__all__ = ["NotificationCenter", "NotifySettings", "build_notifier", "load_settings"]
