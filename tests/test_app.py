"""The app as a whole: health check and where anonymous visitors go."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz_answers_ok_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_anonymous_home_redirects_to_sign_in_with_next(client: FlaskClient) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"


def test_sign_in_page_offers_microsoft_sign_in(client: FlaskClient) -> None:
    response = client.get("/login?next=/admin/users")

    assert response.status_code == 200
    assert "Sign in with Microsoft" in response.text
    assert 'href="/auth/login?next=/admin/users"' in response.text
