"""Background tasks of the plans app, run by django-q2."""

import logging

from botocore.exceptions import BotoCoreError, ClientError

from drsorch.drs.errors import describe

from .models import Target
from .services import source_servers_sync

logger = logging.getLogger(__name__)


def sync_inventory():
    """Refresh the source-server inventory of every target from DRS (scheduled every 5 minutes).

    One target failing (credentials, network, throttling) is logged and does not stop the
    others. Returns the number of targets synced.
    """
    synced = 0
    for target in Target.objects.order_by("name"):
        try:
            source_servers_sync(target=target)
        except (BotoCoreError, ClientError) as exc:
            # DRS refused or failed even after the gateway's retries: the next run tries again.
            logger.warning("Inventory sync of target %s failed: %s", target.name, describe(exc))
            continue
        except Exception:
            logger.exception("Inventory sync of target %s failed", target.name)
            continue
        synced += 1
    return synced
