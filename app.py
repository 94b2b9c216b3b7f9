"""WSGI entry point: `flask --app app ...` and `gunicorn app:app` find the portal here."""

from portal import create_app

app = create_app()
