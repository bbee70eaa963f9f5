"""Mobile web for citizens: ``/m/`` report and ``/m/track`` pages that work without
JavaScript on any phone browser, and the leaders' mailboxes.

Place in the architecture: a channel adapter that turns form posts into tickets
with ``Channel.web`` through :mod:`contact.service`; status updates reach the
citizen by SMS through the SMS gateway, and the public track page shows the
ticket's public events (never personal data).

``routes`` (the router and its form paths), ``report`` (the report steps),
``track`` (the timeline, rating, reopening), ``guard`` (CSRF, signed links, limits,
purge), ``photos`` (decode and re-encode), ``catalogue`` (services as the pages show
them), ``pages`` (rendering), ``i18n`` (the words).
"""
