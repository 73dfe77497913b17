"""Tell people what is new: e-mail digests, Atom feeds and webhooks, exactly once each.

``digest`` reads the items a channel has not delivered from the store and writes the
digest; ``email``, ``webhook`` and ``atom`` are the channels; ``delivery`` keeps the
bookkeeping (record before sending, confirm after, resend only the unconfirmed) and is
what ``littrack notify``, ``run`` and ``serve`` call.
"""

from littrack.notify.delivery import ChannelResult, Deliverer, after_run, deliver, is_due

__all__ = ["ChannelResult", "Deliverer", "after_run", "deliver", "is_due"]
