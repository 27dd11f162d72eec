"""The web UI the engine serves at /ui (issue 14): server-rendered Jinja2 pages, htmx for interactivity.

Every page reads through the API's own route handlers, called in-process with the caller the auth middleware
authenticated (tork_ray/ui/calls.py): the same checks, the same redaction, nothing the API would not show.
Assets (htmx and its SSE extension) come from the npm registry at install time (scripts/fetch-ui-assets.sh)
and are served from static/vendor/: nothing is fetched from a CDN, the UI works offline."""
