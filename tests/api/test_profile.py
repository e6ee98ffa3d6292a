"""Users create and revoke their API token on their profile page."""

import pytest
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

URL = "/accounts/profile/"


@pytest.fixture
def operator(make_user, client):
    user = make_user(username="olga", role="Operator")
    client.force_login(user)
    return user


def test_login_required(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_profile_shows_roles_and_no_token(client, operator):
    page = client.get(URL).content.decode()
    assert "olga" in page and "Operator" in page
    assert "You have no API token" in page and "Create token" in page


def test_create_shows_the_key_once_and_the_key_works(client, operator):
    response = client.post(URL, {"action": "create"})
    assert response.status_code == 302 and response["Location"] == URL
    key = Token.objects.get(user=operator).key

    first = client.get(URL).content.decode()
    assert key in first and "it is not shown again" in first
    second = client.get(URL).content.decode()
    assert key not in second and f"…{key[-4:]}" in second

    api = client.__class__()
    assert api.get("/api/v1/executions/", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_create_again_replaces_the_token(client, operator):
    client.post(URL, {"action": "create"})
    old = Token.objects.get(user=operator).key
    client.post(URL, {"action": "create"})
    new = Token.objects.get(user=operator).key
    assert new != old
    assert client.__class__().get("/api/v1/plans/", headers={"Authorization": f"Token {old}"}).status_code == 401


def test_revoke(client, operator):
    client.post(URL, {"action": "create"})
    key = Token.objects.get(user=operator).key
    response = client.post(URL, {"action": "revoke"}, follow=True)

    assert not Token.objects.filter(user=operator).exists()
    assert "revoked" in response.content.decode()
    assert client.__class__().get("/api/v1/plans/", headers={"Authorization": f"Token {key}"}).status_code == 401


def test_the_page_needs_csrf(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(username="x"))
    assert client.post(URL, {"action": "create"}).status_code == 403
    assert not Token.objects.exists()


def test_drf_create_token_command_makes_a_working_token(make_user):
    from django.core.management import call_command
    from django.test import Client

    make_user(username="robot", role="Viewer")
    call_command("drf_create_token", "robot")
    key = Token.objects.get(user__username="robot").key
    assert Client().get("/api/v1/plans/", headers={"Authorization": f"Token {key}"}).status_code == 200
