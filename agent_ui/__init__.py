"""Staff pages: agent console (``/console/``), department workbench (``/dept/``),
supervisor dashboard (``/supervisor/``) and admin (``/admin/``).

Place in the architecture: server-rendered pages over the same use cases as the
REST API (:mod:`contact.service`, :mod:`contact.repository`), live through the
``/ws`` event stream (:mod:`contact.bus`). Every query starts from what the
signed-in user may see, exactly as in the API.
"""
