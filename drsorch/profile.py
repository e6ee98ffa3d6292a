"""The profile page: who you are, your roles, and your API token.

DRF's authtoken keeps one token per user. The page shows a new key once, right after it is
created, and afterwards only its last characters, so a key left on screen is not the
credential itself. Creating a token again replaces the old one.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from drsorch.roles import ROLES

VISIBLE_KEY_CHARACTERS = 4
# The new key crosses the redirect after POST in the session, and is shown by the next GET only.
NEW_KEY_SESSION_KEY = "drsorch_new_api_token"


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """GET shows the profile; POST with action=create makes (or replaces) the user's token,
    action=revoke deletes it."""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            Token.objects.filter(user=request.user).delete()
            request.session[NEW_KEY_SESSION_KEY] = Token.objects.create(user=request.user).key
        elif action == "revoke":
            deleted, _ = Token.objects.filter(user=request.user).delete()
            if deleted:
                messages.success(request, "Your API token is revoked: scripts using it now get 401.")
        return redirect("profile")

    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop(NEW_KEY_SESSION_KEY, None)
    return render(request, "accounts/profile.html", {
        "token": token,
        "new_key": new_key if token and new_key == token.key else None,
        "key_hint": token.key[-VISIBLE_KEY_CHARACTERS:] if token else "",
        "roles": sorted(group.name for group in request.user.groups.all() if group.name in ROLES),
        "api_base": request.build_absolute_uri("/api/v1/"),
    })
