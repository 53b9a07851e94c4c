"""A fix for kombu's Redis transport that keeps workers alive through a broker outage.

Cause (reproduced with celery 5.7.0 / kombu 5.7.0, Redis stopped while an acks_late task runs): on a lost
connection the consumer first `collect()`s its kombu Connection, which drops the transport's link to it
(`transport.client = None`), then closes it; closing the default channel restores its unacknowledged
messages, whose new Redis pool reads `transport.client.hostname` → AttributeError. That is not one of the
connection errors celery recovers from, so the worker dies ("Unrecoverable error") instead of reconnecting;
the running task's ack hits the same path. The same shape as celery/kombu#582 and #970.

Fix: a channel whose transport lost its connection raises redis' ConnectionError, which celery already
handles (ignored on close, "couldn't ack" on ack, reconnect loop). The unacknowledged message stays in Redis'
unacked set and is redelivered after the visibility timeout; the runner's fencing then finds the attempt
finished and does nothing.
"""

from kombu.transport import redis as redis_transport


def patch_redis_transport() -> None:
    channel = redis_transport.Channel
    if getattr(channel, "_controlpanel_patched", False):
        return
    # kombu's private Channel._connparams is not in its type stubs: the ignores below are for that, nothing else.
    original = channel._connparams  # type: ignore[attr-defined]

    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise redis_transport.redis.exceptions.ConnectionError("the broker connection was closed")
        return original(self, asynchronous=asynchronous)

    channel._connparams = _connparams  # type: ignore[attr-defined]
    channel._controlpanel_patched = True  # type: ignore[attr-defined]
