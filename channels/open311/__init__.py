"""Open311 GeoReport v2 at ``/open311/v2/``: the city's services and requests for apps
and integrations, in XML (required by the standard) and JSON.

``wire`` knows the two formats and the error body, ``public`` what the public may read
(services from the catalogue, requests without personal data), ``intake`` a client's
POST (its key, the location, the attributes), ``routes`` the thin HTTP layer.
"""
