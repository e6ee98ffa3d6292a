"""ListTagsForResource and TagResource: the tags of a source server, job or recovery instance, found by ARN."""

from urllib.parse import unquote

from django.db import transaction

from ..models import SandboxJob, SandboxRecoveryInstance, SandboxSourceServer
from ..protocol import SandboxError, validation_error


def _resource_for_arn(arn):
    resource = (arn or "").rsplit(":", 1)[-1]
    kind, _, identifier = resource.partition("/")
    models = {
        "source-server": (SandboxSourceServer, "source_server_id"),
        "job": (SandboxJob, "job_id"),
        "recovery-instance": (SandboxRecoveryInstance, "instance_id"),
    }
    if kind in models:
        model, field = models[kind]
        found = model.objects.filter(**{field: identifier}).first()
        if found is not None and found.arn == arn:
            return found
    raise SandboxError("ResourceNotFoundException", f"Resource {arn} not found.", resourceId=arn)


def list_tags_for_resource(scope, body):
    """ListTagsForResource of a source server, job or recovery instance ARN."""
    return 200, {"tags": dict(_resource_for_arn(body["resourceArn"]).tags)}


def tag_resource(scope, body):
    """TagResource: add or replace tags of a source server, job or recovery instance."""
    tags = body.get("tags")
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise validation_error("tags must map strings to strings.", field="tags")
    with transaction.atomic(using="sandbox"):
        resource = _resource_for_arn(body["resourceArn"])
        resource.tags = {**resource.tags, **tags}
        resource.save(update_fields=["tags"])
    return 200, None


def resource_arn_from_path(path):
    """The resourceArn of a /tags/{resourceArn} request path."""
    return unquote(path.split("/tags/", 1)[1]) if "/tags/" in path else ""
