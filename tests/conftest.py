"""Fixtures shared by the whole suite."""

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture
def make_user(db):
    """Create a user in one of the contract's roles (Viewer, Operator, Commander, Planner)."""

    def make(username="user", role=None, superuser=False):
        if superuser:
            return User.objects.create_superuser(username=username, password="pw", email=f"{username}@example.com")
        user = User.objects.create_user(username=username, password="pw")
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make
